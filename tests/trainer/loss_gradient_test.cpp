// The gradient of the GRPO loss through a tiny Qwen2, checked against central finite
// differences with double-precision weights: the analytic gradient LibTorch computes must be
// the derivative of the loss the trainer reports. The model keeps RMSNorm, the attention
// softmax and the logits in float32 (as transformers does), so values carry float32 rounding
// (~1e-7 relative); the step h = 1e-3 and the tolerance are chosen for that.
#include <cmath>

#include <torch/types.h>
#include <torch/utils.h>
#include "tests/support/catch_torch.h"

#include "rl/model/decoder.h"
#include "trainer/grpo_loss.h"
#include "trainer/logprobs.h"

using namespace rl::trainer;

TEST_CASE("GRPO loss gradient through a tiny model matches finite differences", "[loss][gradient]") {
  torch::manual_seed(11);
  rl::model::DecoderConfig shape = rl::model::DecoderConfig::Tiny(/*vocab_size=*/40);
  shape.hidden_size = 16;
  shape.intermediate_size = 24;
  shape.num_attention_heads = 2;
  shape.num_key_value_heads = 1;
  shape.head_dim = 8;
  shape.initializer_range = 0.3;  // large weights: non-trivial log-probs
  rl::model::Decoder model(shape, torch::TensorOptions().dtype(torch::kDouble), /*random_init=*/true);

  std::vector<std::vector<int32_t>> prompts = {{1, 2, 3}, {4, 5}};
  std::vector<std::vector<int32_t>> completions = {{6, 7, 8, 9}, {10, 11}};
  TokenBatch batch = MakeTokenBatch(prompts, completions);

  torch::Tensor reference_shift = torch::tensor({0.3, -0.2, 0.1, 0.05, -0.1, 0.2, 0.0, 0.0}, torch::kDouble).view({2, 4});
  // Old and reference log-probs fixed near the current ones (ratios inside the clip range, so
  // the objective is smooth where the differences are taken), held constant while the
  // weights move.
  torch::Tensor base_logprobs;
  {
    torch::NoGradGuard no_grad;
    base_logprobs = ComputeCompletionLogprobs(*model, batch, 0.7, 3, false).logprobs.to(torch::kDouble);
  }
  auto loss_with_fixed = [&](bool grad) {
    torch::AutoGradMode mode(grad);
    CompletionLogprobs lp = ComputeCompletionLogprobs(*model, batch, 0.7, 3, false);
    PolicyLossInputs in;
    in.logprobs = lp.logprobs.to(torch::kDouble);
    in.old_logprobs = base_logprobs - 0.05;
    in.ref_logprobs = base_logprobs + reference_shift;
    in.advantages = torch::tensor({1.3, -0.7}, torch::kDouble);
    in.mask = batch.completion_mask.to(torch::kDouble);
    PolicyLossOptions options;
    options.loss_type = LossType::kGrpo;
    options.beta = 0.5;
    return ComputePolicyLoss(in, options).loss;
  };
  model->zero_grad();
  loss_with_fixed(true).backward();
  int checked = 0;
  for (auto& named : model->named_parameters()) {
    torch::Tensor p = named.value();
    torch::Tensor g = p.grad().reshape({-1});
    // The entry with the largest gradient of each tensor (a well-conditioned difference).
    const int64_t i = g.abs().argmax().item<int64_t>();
    const double analytic = g[i].item<double>();
    if (std::abs(analytic) < 1e-3) continue;
    const double h = 1e-3;
    torch::Tensor flat = p.detach().view({-1});
    const double original = flat[i].item<double>();
    flat[i] = original + h;
    const double up = loss_with_fixed(false).item<double>();
    flat[i] = original - h;
    const double down = loss_with_fixed(false).item<double>();
    flat[i] = original;
    const double numeric = (up - down) / (2 * h);
    INFO(named.key() << "[" << i << "]: analytic " << analytic << ", numeric " << numeric);
    CHECK(numeric == Approx(analytic).epsilon(2e-2).margin(2e-4));
    ++checked;
  }
  CHECK(checked >= 10);
}
