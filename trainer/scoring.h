// trainer/scoring.h: where rewards come from during training — the rule library in process,
// or a reward server (`rl serve`) through its client, chosen by the config's rewards section —
// and how a rollout's completions are scored the moment they finish.
//
//   Scorer scorer = MakeScorer(config.rewards);   // validates the spec or reaches the server
//   ScoredRollout r = RunAndScore(engine, prompts, sampling, scorer.score);
//   r.rollout.groups[i].completions[j]  is scored by  r.rewards[i][j]
//
// The rollout engine knows nothing of rewards: RunAndScore hands it a callback that turns each
// finished completion into a rewards::Sample (ToSample, the one conversion) and scores it on
// the engine's callback threads, overlapping generation.
//
// Remote scoring spreads requests over the servers of rewards.server and retries failed ones
// elsewhere, then with backoff (rewards.max_retries per server, rewards.retry_backoff_s); when
// no server answers, score throws and the run stops with a clear error — rewards are never
// filled in with zeros.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "rewards/reward.h"
#include "rollout/rollout.h"
#include "trainer/completion_log.h"
#include "trainer/config.h"

namespace rl::rewards::server {
class RewardClient;
}

namespace rl::trainer {

// A prompt as the policy sees it (token ids, templated) and as the rules see it.
struct Prompt {
  std::vector<int32_t> ids;
  std::string text;                  // rewards::Sample::prompt
  std::optional<std::string> gold;   // rewards::Sample::gold
};

// What the rules read of one completion of `prompt`: the prompt text, the completion text, the
// gold answer and the completion's token count.
rewards::Sample ToSample(const Prompt& prompt, const rollout::Completion& completion);

// Scores one finished completion of `prompt`. Called from the rollout's callback threads,
// concurrently: it must be thread-safe. Throwing aborts the rollout.
using ScoreFn =
    std::function<rewards::RewardResult(const Prompt& prompt, const rollout::Completion& completion)>;

// reward.Score(ToSample(prompt, completion)). `reward` must outlive the returned function.
ScoreFn ScoreWithReward(const rewards::Reward& reward);

struct ScoredRollout {
  rollout::RolloutResult rollout;
  // [prompt][sample], as the groups; empty when nothing was scored.
  std::vector<std::vector<rewards::RewardResult>> rewards;
  // The result of completion `sample` of prompt `prompt`; null when nothing was scored.
  const rewards::RewardResult* Find(int64_t prompt, int64_t sample) const;
};

// engine.Run over the prompts' ids, scoring each completion with `score` (when not empty) as
// it finishes. Rethrows what the engine or `score` threw.
ScoredRollout RunAndScore(const rollout::RolloutEngine& engine, std::span<const Prompt> prompts,
                          const rollout::SamplingParams& sampling, const ScoreFn& score);

// The completions of `round` (sampled from `prompts`, as given to RunAndScore) as records of
// GRPO step `step` (trainer/completion_log.h): group by group in the rollout's order, each
// group's completions in its order; the advantages are left empty.
std::vector<CompletionRecord> ToCompletionRecords(int64_t step, std::span<const Prompt> prompts,
                                                  const ScoredRollout& round);

struct Scorer {
  ScoreFn score;
  std::string description;                  // "in process (r1.yaml)", "http://…, http://…"
  std::shared_ptr<rewards::Reward> reward;  // in process only
  std::shared_ptr<rewards::server::RewardClient> client;  // remote only
};

// Throws std::runtime_error naming the spec file (and its error) or the server.
Scorer MakeScorer(const RewardsSection& rewards);

}  // namespace rl::trainer
