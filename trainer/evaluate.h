// trainer/evaluate.h: format rate and accuracy of a policy on held-out problems.
//
//   EvalResult r = Evaluate(policy, config, eval_examples, world);
//   r.format_rate   // share of completions with <think>…</think><answer>…</answer> (strict)
//   r.accuracy      // share whose answer is equivalent to the gold (accuracy.math)
//
// The scoring here is fixed — format.think_answer and accuracy.math — whatever reward the run
// trains with, so the before/after table compares like with like. Completions are sampled
// with eval.temperature (0: greedy), eval.num_samples per problem, the rollout's stop
// conditions and a seed fixed by run.seed (the same problems and draws before and after).
// Every rank of `world` samples and scores its share of the completions (each draws from the
// stream of its problem and sample, as in one process) and gets the totals of all.
// This header is LibTorch-free (rl train's CLI and the run summary read EvalResult).
// Thread safety: uses the policy's model read-only; one call at a time per policy. Every rank
// calls it, between the same collectives.
#pragma once

#include <cstdint>
#include <span>

#include <nlohmann/json_fwd.hpp>

#include "rl/data/dataset.h"
#include "trainer/config.h"

namespace rl::trainer {

struct Policy;  // trainer/policy.h; declared only, so that EvalResult's users need no LibTorch
class World;    // trainer/distributed.h

struct EvalResult {
  int64_t problems = 0;
  int64_t completions = 0;
  double format_rate = 0;
  double accuracy = 0;
  double mean_length = 0;  // tokens per completion
  double seconds = 0;
};

EvalResult Evaluate(Policy& policy, const TrainConfig& config, std::span<const data::Example> problems,
                    const World& world);

nlohmann::json ToJson(const EvalResult& result);
EvalResult EvalResultFromJson(const nlohmann::json& j);

}  // namespace rl::trainer
