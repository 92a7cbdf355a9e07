// trainer/optimizer.h: AdamW with a warm-up + decay schedule, gradient clipping, and the guard
// that skips non-finite updates.
//
//   InPlaceAdamW adamw = MakeAdamW(model->parameters(), config.grpo.optim);
//   NonFiniteGuard guard(config.grpo.max_nonfinite_steps);
//   for (int64_t step = 0; step < steps; ++step) {
//     double lr = ScheduledLearningRate(config.grpo.optim, step, steps);
//     SetLearningRate(adamw, lr);
//     ... loss.backward() ...
//     GradientCheck g = ClipGradients(model->parameters(), config.grpo.optim.max_grad_norm);
//     if (guard.Admit(g.finite && loss_is_finite)) adamw.step();   // throws after too many skips
//     adamw.zero_grad();
//   }
//
// Schedules (step counts from 0; `warmup_ratio` of the steps ramp linearly from lr/warmup up):
//   constant: lr after warm-up;  linear: down to 0 at the end;
//   cosine: lr · ½(1 + cos(π · progress)), progress over the steps after warm-up.
// Thread safety: none needed (one training loop).
#pragma once

#include <cstdint>
#include <stdexcept>
#include <vector>

#include <torch/optim/adamw.h>

#include "trainer/config.h"

namespace rl::trainer {

double ScheduledLearningRate(const OptimizerSection& optim, int64_t step, int64_t total_steps);

// LibTorch's AdamW (its options, state and serialisation, so checkpoints are unchanged) with a
// step that allocates nothing: LibTorch's builds the denominator sqrt(v)/sqrt(1−β2ᵗ) + ε as two
// fresh tensors the size of each parameter, and on machines that return freed memory to the
// host (VMs with free-page reporting, like our CI's) touching fresh memory costs ~6 s per GB:
// 20 s of a 0.5B model's step. This one computes the denominator through one small reused
// buffer, a slice at a time, with the same operations in the same order: bit-identical results
// (a test compares). amsgrad and closures are not supported (we configure neither).
class InPlaceAdamW : public torch::optim::AdamW {
 public:
  using torch::optim::AdamW::AdamW;
  torch::Tensor step(LossClosure closure = nullptr) override;

 private:
  torch::Tensor scratch_;  // [kSlice] of the last parameter's dtype
};

InPlaceAdamW MakeAdamW(const std::vector<torch::Tensor>& parameters, const OptimizerSection& optim);
void SetLearningRate(torch::optim::AdamW& optimizer, double learning_rate);

struct GradientCheck {
  double norm = 0;     // global L2 norm before clipping
  bool finite = true;  // every gradient finite
};

// Clips the global gradient norm to max_norm (0: no clipping) and reports the norm. When a
// gradient is not finite nothing is scaled and `finite` is false.
GradientCheck ClipGradients(const std::vector<torch::Tensor>& parameters, double max_norm);

class NonFiniteError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Counts skipped updates; after `max_skips` of them the run stops (a diverged run should not
// burn hours producing nothing).
class NonFiniteGuard {
 public:
  explicit NonFiniteGuard(int64_t max_skips) : max_skips_(max_skips) {}
  // True when the update may proceed; false (and counted) when it must be skipped. Throws
  // NonFiniteError once the count reaches max_skips.
  bool Admit(bool finite);
  int64_t skipped() const { return skipped_; }
  void set_skipped(int64_t skipped) { skipped_ = skipped; }

 private:
  int64_t max_skips_;
  int64_t skipped_ = 0;
};

}  // namespace rl::trainer
