#include "trainer/scoring.h"

#include <stdexcept>

#include "rewards/server/client.h"

namespace rl::trainer {
namespace {

rewards::ScoreStatus StatusFromName(const std::string& name) {
  for (rewards::ScoreStatus status :
       {rewards::ScoreStatus::kOk, rewards::ScoreStatus::kMissingGold, rewards::ScoreStatus::kMissingTokenCount,
        rewards::ScoreStatus::kInvalidGold, rewards::ScoreStatus::kBudgetExceeded,
        rewards::ScoreStatus::kRuleError}) {
    if (rewards::ToString(status) == name) return status;
  }
  throw std::runtime_error("reward server answered an unknown status '" + name + "'");
}

// The server's answer in the shape of an in-process result.
rewards::RewardResult FromRemote(const server::RemoteScore& remote) {
  rewards::RewardResult result;
  result.total = remote.reward;
  result.status = StatusFromName(remote.status);
  for (const auto& [rule, value] : remote.components) {
    rewards::RuleScore score;
    score.rule = rule;
    score.value = value.value_or(0.0);
    score.status = value ? rewards::ScoreStatus::kOk : result.status;
    score.detail = value ? "" : remote.detail;
    result.components.push_back(std::move(score));
  }
  return result;
}

}  // namespace

Scorer MakeScorer(const RewardsSection& section) {
  Scorer scorer;
  if (!section.server.empty()) {
    server::ClientOptions options;
    options.url = section.server;
    options.reward = section.reward_name;
    options.max_attempts = static_cast<int>(section.max_retries) + 1;
    options.initial_backoff_s = section.retry_backoff_s;
    options.request_timeout_s = section.timeout_s;
    try {
      scorer.client = std::make_shared<server::RewardClient>(options);
    } catch (const server::RewardClientError& e) {
      throw std::runtime_error(std::string("rewards.server: ") + e.what());
    }
    scorer.description = section.server;
    std::shared_ptr<server::RewardClient> client = scorer.client;
    scorer.score = [client](const rollout::RolloutPrompt& prompt, const rollout::Completion& completion) {
      rewards::Sample sample;
      sample.prompt = prompt.prompt_text;
      sample.completion = completion.text;
      if (prompt.gold) sample.gold = *prompt.gold;
      sample.completion_tokens = static_cast<int64_t>(completion.token_ids.size());
      std::vector<server::RemoteScore> scores = client->Score(std::span<const rewards::Sample>(&sample, 1));
      return FromRemote(scores.at(0));
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
  scorer.score = rollout::ScoreWithReward(*scorer.reward);
  return scorer;
}

}  // namespace rl::trainer
