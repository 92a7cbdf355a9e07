#include "trainer/optimizer.h"

#include <algorithm>
#include <cmath>
#include <memory>
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

torch::Tensor InPlaceAdamW::step(LossClosure closure) {
  TORCH_CHECK(closure == nullptr, "InPlaceAdamW: closures are not supported");
  torch::NoGradGuard no_grad;
  constexpr int64_t kSlice = int64_t{1} << 22;  // 16 MB of float32: stays resident between steps
  for (auto& group : param_groups()) {
    auto& options = static_cast<torch::optim::AdamWOptions&>(group.options());
    TORCH_CHECK(!options.amsgrad(), "InPlaceAdamW: amsgrad is not supported");
    const auto [beta1, beta2] = options.betas();
    for (torch::Tensor& p : group.params()) {
      if (!p.grad().defined()) continue;
      const torch::Tensor& grad = p.grad();
      if (options.weight_decay() != 0) p.mul_(1 - options.lr() * options.weight_decay());
      // State as LibTorch keeps it (key, initialisation), so its serialisation reads and writes it.
      const std::string key = c10::guts::to_string(p.unsafeGetTensorImpl());
      auto& slot = state_[key];
      if (!slot) {
        auto fresh = std::make_unique<torch::optim::AdamWParamState>();
        fresh->step(0);
        fresh->exp_avg(torch::zeros_like(p, torch::MemoryFormat::Preserve));
        fresh->exp_avg_sq(torch::zeros_like(p, torch::MemoryFormat::Preserve));
        slot = std::move(fresh);
      }
      auto& state = static_cast<torch::optim::AdamWParamState&>(*slot);
      state.step(state.step() + 1);
      const double bias_correction1 = 1 - std::pow(beta1, state.step());
      const double bias_correction2 = 1 - std::pow(beta2, state.step());
      state.exp_avg().mul_(beta1).add_(grad, 1 - beta1);
      state.exp_avg_sq().mul_(beta2).addcmul_(grad, grad, 1 - beta2);
      const double step_size = options.lr() / bias_correction1;
      TORCH_CHECK(p.is_contiguous() && state.exp_avg().is_contiguous() && state.exp_avg_sq().is_contiguous(),
                  "InPlaceAdamW: parameters and moments must be contiguous");
      torch::Tensor flat_p = p.view({-1}), flat_m = state.exp_avg().view({-1}), flat_v = state.exp_avg_sq().view({-1});
      if (!scratch_.defined() || scratch_.scalar_type() != p.scalar_type() || scratch_.device() != p.device()) {
        scratch_ = torch::empty({kSlice}, p.options());
      }
      for (int64_t start = 0; start < flat_p.numel(); start += kSlice) {
        const int64_t len = std::min(kSlice, flat_p.numel() - start);
        torch::Tensor denom = scratch_.narrow(0, 0, len);
        torch::sqrt_out(denom, flat_v.narrow(0, start, len));
        denom.div_(std::sqrt(bias_correction2)).add_(options.eps());
        flat_p.narrow(0, start, len).addcdiv_(flat_m.narrow(0, start, len), denom, -step_size);
      }
    }
  }
  return {};
}

InPlaceAdamW MakeAdamW(const std::vector<torch::Tensor>& parameters, const OptimizerSection& optim) {
  torch::optim::AdamWOptions options(optim.learning_rate);
  options.betas({optim.adam_beta1, optim.adam_beta2});
  options.eps(optim.adam_epsilon);
  options.weight_decay(optim.weight_decay);
  return InPlaceAdamW(parameters, options);
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
