// rollout/rollout.h: grouped rollouts for GRPO: G completions per prompt, scored while the
// rest are still being generated.
//
//   rl::rollout::RolloutOptions options;
//   options.group_size = 8;          // G
//   options.micro_batch_size = 16;   // sequences per batched Generate call
//   options.workers = 2;             // generation threads, each with its own torch threads
//   options.threads_per_worker = 1;
//   options.scoring_threads = 2;
//   rl::rollout::RolloutEngine engine(*policy, tokenizer, options);   // throws on bad options
//
//   std::vector<rl::rollout::RolloutPrompt> prompts = {{tokenizer.Encode(p), p, "3/4"}, ...};
//   rl::rollout::SamplingParams sampling;  // temperature, top_p, eos_ids, ..., seed
//   sampling.seed = run_seed * 1000003 + step;  // a new seed per step: new samples per step
//   rl::rollout::RolloutResult result =
//       engine.Run(prompts, sampling, rl::rollout::ScoreWithReward(*reward));
//   for (const rl::rollout::RolloutGroup& group : result.groups)      // one per prompt, in order
//     for (const rl::rollout::Completion& c : group.completions)      // G, by sample_index
//       use(c.token_ids, c.logprobs, c.reward->total);
//
// How it runs: the prompts × G sequences, in order (prompt 0's G samples first), are cut into
// micro-batches of micro_batch_size. `workers` threads take micro-batches from a shared
// counter and run Generate on each (rollout/generate.h). The moment a sequence finishes (EOS,
// stop string or length) it is queued for scoring; `scoring_threads` threads call the scorer,
// so scoring overlaps generation instead of waiting for the whole batch.
//
// Determinism: sequence (prompt i, sample j) draws from its own random stream of
// sampling.seed (sampling.h), so the result does not depend on which worker ran it, on the
// worker count or on scheduling. It can depend on micro_batch_size and threads_per_worker only
// through float rounding of the logits (different matrix shapes); with those fixed, a run is
// reproducible bit for bit on CPU.
//
// Threads: each worker calls at::set_num_threads(threads_per_worker) on its own thread (with
// LibTorch's OpenMP backend the budget is per thread; the value also becomes LibTorch's
// default for threads created afterwards).
//
// Errors: the constructor throws std::invalid_argument for bad options; Run throws
// std::invalid_argument for bad sampling params or prompts, and rethrows the first exception
// of a worker or of the scorer after stopping the others (no completion is left unscored).
//
// Thread safety: Run only reads the engine and the model; do not change the model's weights
// while a Run is in progress.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "rewards/reward.h"
#include "rollout/generate.h"
#include "rollout/sampling.h"

namespace rl::rollout {

struct RolloutPrompt {
  std::vector<int32_t> prompt_ids;   // what the policy is conditioned on (already templated)
  std::string prompt_text;           // handed to the scorer as rewards::Sample::prompt
  std::optional<std::string> gold;   // handed to the scorer as rewards::Sample::gold
};

struct RolloutOptions {
  int64_t group_size = 8;          // G: completions per prompt
  int64_t micro_batch_size = 16;   // sequences per Generate call
  int workers = 1;                 // generation threads
  int threads_per_worker = 0;      // LibTorch threads per worker; 0: hardware threads / workers
  int scoring_threads = 1;         // threads calling the scorer (unused without a scorer)

  // Empty when usable; otherwise a message naming the first bad field.
  std::string Check() const;
};

// Scores one finished completion of `prompt`. Called from the scoring threads, concurrently:
// it must be thread-safe. Throwing aborts the rollout (Run rethrows).
using ScoreFn =
    std::function<rewards::RewardResult(const RolloutPrompt& prompt, const Completion& completion)>;

// A scorer that calls reward.Score with the prompt text, the completion text, the gold answer
// and the completion's token count. `reward` must outlive the returned function.
ScoreFn ScoreWithReward(const rewards::Reward& reward);

struct RolloutGroup {
  int64_t prompt_index = 0;
  std::vector<Completion> completions;  // G of them, sample_index 0..G-1 in order
};

// Where the time went, in seconds from the start of Run.
struct RolloutStats {
  double wall_seconds = 0;          // the whole Run
  double generation_seconds = 0;    // until the last micro-batch finished generating
  double scoring_seconds = 0;       // summed time spent inside the scorer (all threads)
  double scoring_tail_seconds = 0;  // wall time scoring ran on after generation had finished
  std::optional<double> first_scored_at;          // when the first score was finished
  std::vector<double> micro_batch_finished_at;    // per micro-batch, in micro-batch order
  int64_t completions = 0;
  int64_t generated_tokens = 0;
};

struct RolloutResult {
  std::vector<RolloutGroup> groups;  // one per prompt, in prompt order
  RolloutStats stats;
};

class RolloutEngine {
 public:
  // Keeps references to `model` and `tokenizer`: both must outlive the engine.
  RolloutEngine(model::Qwen2Impl& model, const text::Tokenizer& tokenizer,
                RolloutOptions options);

  // G completions for each prompt, each scored by `score` when one is given
  // (Completion::reward is then set; otherwise it stays empty).
  RolloutResult Run(std::span<const RolloutPrompt> prompts, const SamplingParams& sampling,
                    const ScoreFn& score = {}) const;

  const RolloutOptions& options() const { return options_; }

 private:
  model::Qwen2Impl& model_;
  const text::Tokenizer& tokenizer_;
  RolloutOptions options_;
};

}  // namespace rl::rollout
