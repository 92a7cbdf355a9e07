// rollout/rollout.h: grouped rollouts for GRPO: G completions per prompt, each handed to a
// callback (the trainer scores it there) while the rest are still being generated.
//
//   rl::rollout::RolloutOptions options;
//   options.group_size = 8;          // G
//   options.micro_batch_size = 16;   // sequences per batched Generate call
//   options.workers = 2;             // generation threads, each with its own torch threads
//   options.threads_per_worker = 1;
//   options.callback_threads = 2;
//   rl::rollout::RolloutEngine engine(*policy, tokenizer, options);   // throws on bad options
//
//   std::vector<std::vector<int32_t>> prompts = {tokenizer.Encode(p), ...};  // templated
//   rl::rollout::SamplingParams sampling;  // temperature, top_p, eos_ids, ..., seed
//   sampling.seed = DeriveSeed(run_seed, step);  // a new seed per step: new samples per step
//   rl::rollout::RolloutResult result = engine.Run(prompts, sampling, [&](const Completion& c) {
//     results[c.prompt_index * G + c.sample_index] = Score(c);   // thread-safe, one slot each
//   });
//   for (const rl::rollout::RolloutGroup& group : result.groups)      // one per prompt, in order
//     for (const rl::rollout::Completion& c : group.completions)      // G, by sample_index
//       use(c.token_ids, c.logprobs);
//
// How it runs: the prompts × G sequences, in order (prompt 0's G samples first), are cut into
// one contiguous share per worker, and each of the `workers` threads runs Generate on its share
// with micro_batch_size sequences decoding at once (continuous batching, rollout/generate.h: a
// finished sequence's slot takes the next waiting one). With continuous_batching off they are
// cut into micro-batches of micro_batch_size instead, taken by the workers from a shared
// counter, each decoding until its longest sequence ends. The moment a sequence finishes (EOS,
// stop string or length) it is queued; `callback_threads` threads hand it to the callback, so
// slow work there (scoring) overlaps generation instead of waiting for the whole batch. The
// engine knows nothing of rewards: what the callback does is the caller's business.
//
// Determinism: sequence (prompt i, sample j) draws from its own random stream of
// sampling.seed (sampling.h), so the result does not depend on which worker ran it, on the
// worker count, on continuous or static batching or on scheduling. It can depend on
// micro_batch_size, continuous_batching, workers (the shares) and threads_per_worker only
// through float rounding of the logits (different matrix shapes); with those fixed, a run is
// reproducible bit for bit on CPU.
//
// Threads: each worker calls at::set_num_threads(threads_per_worker) on its own thread (with
// LibTorch's OpenMP backend the budget is per thread; the value also becomes LibTorch's
// default for threads created afterwards).
//
// Errors: the constructor throws std::invalid_argument for bad options; Run throws
// std::invalid_argument for bad sampling params or prompts, and rethrows the first exception
// of a worker or of the callback after stopping the others.
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

#include "rollout/generate.h"
#include "rollout/sampling.h"

namespace rl::rollout {

struct RolloutOptions {
  int64_t group_size = 8;          // G: completions per prompt
  int64_t micro_batch_size = 16;   // sequences per Generate call
  int workers = 1;                 // generation threads
  int threads_per_worker = 0;      // LibTorch threads per worker; 0: hardware threads / workers
  int callback_threads = 1;        // threads calling the callback (unused without one)
  bool continuous_batching = true;  // false: static micro-batches (for comparison)

  // Empty when usable; otherwise a message naming the first bad field.
  std::string Check() const;
};

// Sees each finished completion once, on one of the callback threads, concurrently with
// generation and with other calls: it must be thread-safe. Throwing aborts the rollout (Run
// rethrows).
using FinishedFn = std::function<void(const Completion& completion)>;

struct RolloutGroup {
  int64_t prompt_index = 0;
  std::vector<Completion> completions;  // G of them, sample_index 0..G-1 in order
};

// Where the time went, in seconds from the start of Run.
struct RolloutStats {
  double wall_seconds = 0;          // the whole Run
  double generation_seconds = 0;    // until the last micro-batch finished generating
  double callback_seconds = 0;       // summed time spent inside the callback (all threads)
  double callback_tail_seconds = 0;  // wall time callbacks ran on after generation had finished
  std::optional<double> first_callback_done_at;   // when the first callback returned
  // per Generate call (a worker's share, or a micro-batch without continuous batching), in order
  std::vector<double> micro_batch_finished_at;
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
  RolloutEngine(model::DecoderImpl& model, const text::Tokenizer& tokenizer,
                RolloutOptions options);

  // G completions for each prompt (token ids, already templated; none may be empty), each
  // handed to `on_finished` when one is given.
  RolloutResult Run(std::span<const std::vector<int32_t>> prompts, const SamplingParams& sampling,
                    const FinishedFn& on_finished = {}) const;

  const RolloutOptions& options() const { return options_; }

 private:
  model::DecoderImpl& model_;
  const text::Tokenizer& tokenizer_;
  RolloutOptions options_;
};

}  // namespace rl::rollout
