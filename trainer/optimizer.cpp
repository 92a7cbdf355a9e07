#include "trainer/optimizer.h"

#include <cmath>
#include <numbers>
#include <string>

#include <torch/types.h>

namespace rl::trainer {

double ScheduledLearningRate(const OptimizerSection& optim, int64_t step, int64_t total_steps) {
  const double lr = optim.learning_rate;
  const int64_t warmup = static_cast<int64_t>(std::ceil(optim.warmup_ratio * static_cast<double>(total_steps)));
  if (step < warmup) return lr * static_cast<double>(step + 1) / static_cast<double>(warmup);
  const int64_t decay_steps = std::max<int64_t>(total_steps - warmup, 1);
  const double progress = static_cast<double>(step - warmup) / static_cast<double>(decay_steps);
  switch (optim.lr_scheduler_type) {
    case LrSchedule::kConstant:
      return lr;
    case LrSchedule::kLinear:
      return lr * std::max(0.0, 1.0 - progress);
    case LrSchedule::kCosine:
      return lr * 0.5 * (1.0 + std::cos(std::numbers::pi * std::min(progress, 1.0)));
  }
  return lr;
}

torch::optim::AdamW MakeAdamW(const std::vector<torch::Tensor>& parameters,
                              const OptimizerSection& optim) {
  torch::optim::AdamWOptions options(optim.learning_rate);
  options.betas({optim.adam_beta1, optim.adam_beta2});
  options.eps(optim.adam_epsilon);
  options.weight_decay(optim.weight_decay);
  return torch::optim::AdamW(parameters, options);
}

void SetLearningRate(torch::optim::AdamW& optimizer, double learning_rate) {
  for (auto& group : optimizer.param_groups()) {
    static_cast<torch::optim::AdamWOptions&>(group.options()).lr(learning_rate);
  }
}

GradientCheck ClipGradients(const std::vector<torch::Tensor>& parameters, double max_norm) {
  GradientCheck check;
  double squares = 0;
  for (const torch::Tensor& p : parameters) {
    if (!p.grad().defined()) continue;
    const double norm = p.grad().norm().item<double>();  // per tensor in its dtype: no copy
    squares += norm * norm;
  }
  check.norm = std::sqrt(squares);
  check.finite = std::isfinite(check.norm);
  if (check.finite && max_norm > 0 && check.norm > max_norm) {
    const double scale = max_norm / (check.norm + 1e-6);
    torch::NoGradGuard no_grad;
    for (const torch::Tensor& p : parameters) {
      if (p.grad().defined()) p.grad().mul_(scale);
    }
  }
  return check;
}

bool NonFiniteGuard::Admit(bool finite) {
  if (finite) return true;
  ++skipped_;
  if (skipped_ >= max_skips_) {
    throw NonFiniteError("stopping: " + std::to_string(skipped_) +
                         " updates had a non-finite loss or gradient (grpo.max_nonfinite_steps = " +
                         std::to_string(max_skips_) + ")");
  }
  return false;
}

}  // namespace rl::trainer
