#include "trainer/scoring.h"

#include <stdexcept>
#include <utility>

#include "common/names.h"
#include "rewards/server/client.h"

namespace rl::trainer {

rewards::Sample ToSample(const Prompt& prompt, const rollout::Completion& completion) {
  rewards::Sample sample;
  sample.prompt = prompt.text;
  sample.completion = completion.text;
  sample.gold = prompt.gold;
  sample.completion_tokens = static_cast<int64_t>(completion.token_ids.size());
  return sample;
}

ScoreFn ScoreWithReward(const rewards::Reward& reward) {
  return [&reward](const Prompt& prompt, const rollout::Completion& completion) {
    return reward.Score(ToSample(prompt, completion));
  };
}

std::vector<CompletionRecord> ToCompletionRecords(int64_t step, std::span<const Prompt> prompts,
                                                  const ScoredRollout& round) {
  std::vector<CompletionRecord> records;
  for (const rollout::RolloutGroup& g : round.rollout.groups) {
    const Prompt& prompt = prompts[static_cast<size_t>(g.prompt_index)];
    for (const rollout::Completion& c : g.completions) {
      const rewards::RewardResult* result = round.Find(g.prompt_index, c.sample_index);
      records.push_back({step, prompt.text, c.text, result ? *result : rewards::RewardResult{}, std::nullopt,
                         std::string(rollout::ToString(c.finish_reason)), static_cast<int64_t>(c.token_ids.size())});
    }
  }
  return records;
}

ScoredRollout RunAndScore(const rollout::RolloutEngine& engine, std::span<const Prompt> prompts,
                          const rollout::SamplingParams& sampling, const ScoreFn& score) {
  std::vector<std::vector<int32_t>> ids;
  for (const Prompt& p : prompts) ids.push_back(p.ids);
  ScoredRollout out;
  if (!score) {
    out.rollout = engine.Run(ids, sampling);
    return out;
  }
  const size_t group = static_cast<size_t>(engine.options().group_size);
  out.rewards.assign(prompts.size(), std::vector<rewards::RewardResult>(group));
  // Each (prompt, sample) slot is written by exactly one callback; Run joins its threads
  // before returning, so reading them afterwards needs no lock.
  out.rollout = engine.Run(ids, sampling, [&](const rollout::Completion& c) {
    const size_t i = static_cast<size_t>(c.prompt_index), j = static_cast<size_t>(c.sample_index);
    out.rewards[i][j] = score(prompts[i], c);
  });
  return out;
}

const rewards::RewardResult* ScoredRollout::Find(int64_t prompt, int64_t sample) const {
  if (rewards.empty()) return nullptr;
  return &rewards.at(static_cast<size_t>(prompt)).at(static_cast<size_t>(sample));
}

Scorer MakeScorer(const RewardsSection& section) {
  Scorer scorer;
  if (!section.server.empty()) {
    rewards::server::ClientOptions options;
    options.urls = section.server;
    options.reward = section.reward_name;
    options.max_attempts = static_cast<int>(section.max_retries) + 1;
    options.initial_backoff_s = section.retry_backoff_s;
    options.request_timeout_s = section.timeout_s;
    try {
      scorer.client = std::make_shared<rewards::server::RewardClient>(options);
    } catch (const rewards::server::RewardClientError& e) {
      throw std::runtime_error(std::string("rewards.server: ") + e.what());
    }
    scorer.description = common::JoinNames(section.server);
    std::shared_ptr<rewards::server::RewardClient> client = scorer.client;
    scorer.score = [client](const Prompt& prompt, const rollout::Completion& completion) {
      const rewards::Sample sample = ToSample(prompt, completion);
      return std::move(client->Score(std::span<const rewards::Sample>(&sample, 1)).at(0));
    };
    return scorer;
  }
  std::string error;
  if (!section.spec.empty()) {
    scorer.reward = rewards::Reward::FromYamlText(section.spec, &error, "rewards.spec");
    scorer.description = "in process (inline spec)";
  } else {
    scorer.reward = rewards::Reward::FromYamlFile(section.spec_file, &error);
    scorer.description = "in process (" + section.spec_file + ")";
  }
  if (!scorer.reward) throw std::runtime_error(error);
  scorer.score = ScoreWithReward(*scorer.reward);
  return scorer;
}

}  // namespace rl::trainer
