// trainer/scoring.h: where rewards come from during training — the rule library in process,
// or a reward server (`rl serve`) through its client, chosen by the config's rewards section.
//
//   Scorer scorer = MakeScorer(config.rewards);   // validates the spec or reaches the server
//   engine.Run(prompts, sampling, scorer.score);   // scorer.score is thread-safe
//
// Remote scoring retries failed requests with backoff (rewards.max_retries,
// rewards.retry_backoff_s); when a request still fails, score throws and the run stops with
// a clear error — rewards are never filled in with zeros.
#pragma once

#include <memory>
#include <string>

#include "rewards/reward.h"
#include "rollout/rollout.h"
#include "trainer/config.h"

namespace rl::server {
class RewardClient;
}

namespace rl::trainer {

struct Scorer {
  rollout::ScoreFn score;
  std::string description;                  // "in process (r1.yaml)", "http://…"
  std::shared_ptr<rewards::Reward> reward;  // in process only
  std::shared_ptr<server::RewardClient> client;  // remote only
};

// Throws std::runtime_error naming the spec file (and its error) or the server.
Scorer MakeScorer(const RewardsSection& rewards);

}  // namespace rl::trainer
