// The gradient of the GRPO loss through a tiny Qwen2, checked against central finite
// differences with double-precision weights: the analytic gradient LibTorch computes (and the
// hand-written gradient of the chunked log-softmax, trainer/logprobs.cpp) must be the
// derivative of the loss the trainer reports, with and without activation checkpointing and an
// entropy term. The model keeps RMSNorm, the attention softmax and the logits in float32 (as
// transformers does), so values carry float32 rounding (~1e-7 relative); the step h = 1e-3 and
// the tolerance are chosen for that. Mixed precision (bf16 products) is then compared with
// float32 on the same model, within bounds stated below.
#include <cmath>

#include <torch/types.h>
#include <torch/utils.h>
#include "tests/support/catch_torch.h"

#include "rl/model/decoder.h"
#include "trainer/grpo_loss.h"
#include "trainer/logprobs.h"

using namespace rl::trainer;

namespace {

rl::model::DecoderConfig TinyShape() {
  rl::model::DecoderConfig shape = rl::model::DecoderConfig::Tiny(/*vocab_size=*/40);
  shape.hidden_size = 16;
  shape.intermediate_size = 24;
  shape.num_attention_heads = 2;
  shape.num_key_value_heads = 1;
  shape.head_dim = 8;
  shape.initializer_range = 0.3;  // large weights: non-trivial log-probs
  return shape;
}

TokenBatch TinyBatch() {
  std::vector<std::vector<int32_t>> prompts = {{1, 2, 3}, {4, 5}};
  std::vector<std::vector<int32_t>> completions = {{6, 7, 8, 9}, {10, 11}};
  return MakeTokenBatch(prompts, completions);
}

// The GRPO loss (grpo normalisation, beta 0.5) minus entropy_weight × the masked mean entropy,
// with old and reference log-probs fixed near `base` (ratios inside the clip range, so the
// objective is smooth where differences are taken).
torch::Tensor Loss(rl::model::DecoderImpl& model, const TokenBatch& batch, const torch::Tensor& base,
                   double entropy_weight, bool grad) {
  torch::AutoGradMode mode(grad);
  const torch::Tensor reference_shift =
      torch::tensor({0.3, -0.2, 0.1, 0.05, -0.1, 0.2, 0.0, 0.0}, torch::kDouble).view({2, 4});
  CompletionLogprobs lp = ComputeCompletionLogprobs(model, batch, 0.7, 3, entropy_weight != 0);
  PolicyLossInputs in;
  in.logprobs = lp.logprobs.to(torch::kDouble);
  in.old_logprobs = base - 0.05;
  in.ref_logprobs = base + reference_shift;
  in.advantages = torch::tensor({1.3, -0.7}, torch::kDouble);
  in.mask = batch.completion_mask.to(torch::kDouble);
  PolicyLossOptions options;
  options.loss_type = LossType::kGrpo;
  options.beta = 0.5;
  torch::Tensor loss = ComputePolicyLoss(in, options).loss;
  if (entropy_weight != 0) loss = loss - entropy_weight * lp.entropy.to(torch::kDouble).sum() / in.mask.sum();
  return loss;
}

torch::Tensor BaseLogprobs(rl::model::DecoderImpl& model, const TokenBatch& batch) {
  torch::NoGradGuard no_grad;
  return ComputeCompletionLogprobs(model, batch, 0.7, 3, false).logprobs.to(torch::kDouble);
}

// Checks the largest-gradient entry of every parameter tensor against central differences;
// returns how many were checked.
int CheckAgainstFiniteDifferences(rl::model::DecoderImpl& model, double entropy_weight) {
  const TokenBatch batch = TinyBatch();
  const torch::Tensor base = BaseLogprobs(model, batch);
  model.zero_grad();
  Loss(model, batch, base, entropy_weight, true).backward();
  int checked = 0;
  for (auto& named : model.named_parameters()) {
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
    const double up = Loss(model, batch, base, entropy_weight, false).item<double>();
    flat[i] = original - h;
    const double down = Loss(model, batch, base, entropy_weight, false).item<double>();
    flat[i] = original;
    const double numeric = (up - down) / (2 * h);
    INFO(named.key() << "[" << i << "]: analytic " << analytic << ", numeric " << numeric);
    CHECK(numeric == Approx(analytic).epsilon(2e-2).margin(2e-4));
    ++checked;
  }
  return checked;
}

}  // namespace

TEST_CASE("GRPO loss gradient through a tiny model matches finite differences", "[loss][gradient]") {
  torch::manual_seed(11);
  rl::model::Decoder model(TinyShape(), torch::TensorOptions().dtype(torch::kDouble), /*random_init=*/true);
  CHECK(CheckAgainstFiniteDifferences(*model, 0.0) >= 10);
}

// The tied output weight's gradient goes straight into .grad (trainer/logprobs.cpp); an untied
// lm_head's is returned through autograd. Both must be the derivative, and a second backward
// must add to the first.
TEST_CASE("The output weight's gradient is right tied and untied, and accumulates", "[loss][gradient]") {
  for (const bool tied : {true, false}) {
    INFO("tie_word_embeddings " << tied);
    rl::model::DecoderConfig shape = TinyShape();
    shape.tie_word_embeddings = tied;
    torch::manual_seed(11);
    rl::model::Decoder model(shape, torch::TensorOptions().dtype(torch::kDouble), /*random_init=*/true);
    CHECK(CheckAgainstFiniteDifferences(*model, 0.0) >= 10);
    const torch::Tensor once = model->OutputWeight().grad().clone();
    const TokenBatch batch = TinyBatch();
    Loss(*model, batch, BaseLogprobs(*model, batch), 0.0, true).backward();
    CHECK(torch::allclose(model->OutputWeight().grad(), 2 * once, 1e-12, 1e-12));
  }
}

TEST_CASE("With activation checkpointing and an entropy bonus the gradient still matches", "[loss][gradient]") {
  torch::manual_seed(11);
  rl::model::Decoder model(TinyShape(), torch::TensorOptions().dtype(torch::kDouble), /*random_init=*/true);
  TrainingPasses passes(*model, /*bf16=*/false, /*gradient_checkpointing=*/true);
  CHECK(CheckAgainstFiniteDifferences(*model, 0.3) >= 10);
}

TEST_CASE("Checkpointed layers give the gradients of the plain pass, LoRA dropout included", "[loss][gradient]") {
  torch::manual_seed(5);
  rl::model::Decoder model(TinyShape(), torch::TensorOptions().dtype(torch::kFloat32), /*random_init=*/true);
  rl::model::LoraConfig lora;
  lora.r = 4;
  lora.dropout = 0.3;
  lora.target_modules = {"q_proj", "v_proj", "down_proj"};
  rl::model::AttachLora(*model, lora, 3);
  {
    torch::NoGradGuard init;
    for (torch::Tensor& p : rl::model::LoraParameters(*model)) p.normal_(0, 0.2);  // B is zero at first
  }
  model->train();
  const TokenBatch batch = TinyBatch();
  const torch::Tensor base = BaseLogprobs(*model, batch);
  auto gradients = [&](bool checkpoint) {
    TrainingPasses passes(*model, false, checkpoint);
    // Adapters are not registered parameters: Module::zero_grad does not reach them.
    for (torch::Tensor& p : rl::model::LoraParameters(*model)) p.mutable_grad() = torch::Tensor();
    torch::manual_seed(9);  // the same dropout masks in both runs
    Loss(*model, batch, base, 0.1, true).backward();
    std::vector<torch::Tensor> out;
    for (const torch::Tensor& p : rl::model::LoraParameters(*model)) out.push_back(p.grad().clone());
    return out;
  };
  const auto plain = gradients(false), checkpointed = gradients(true);
  REQUIRE(plain.size() == checkpointed.size());
  for (size_t i = 0; i < plain.size(); ++i) {
    INFO("adapter tensor " << i);
    CHECK(plain[i].abs().sum().item<double>() > 0);
    CHECK(torch::allclose(plain[i], checkpointed[i], /*rtol=*/1e-5, /*atol=*/1e-7));
  }
}

// bf16 has 8 significant bits (relative rounding 2^-9 ≈ 0.2%): products of 16-64 terms carry a
// few tenths of a percent, so the loss is compared within 2% and the gradient by direction
// (cosine similarity above 0.99) and size (norm within 5%).
TEST_CASE("Mixed precision gives float32's loss and gradient within bf16's rounding", "[loss][gradient][bf16]") {
  torch::manual_seed(7);
  rl::model::DecoderConfig shape = TinyShape();
  shape.hidden_size = 64;
  shape.intermediate_size = 128;
  shape.num_attention_heads = 4;
  shape.num_key_value_heads = 2;
  shape.head_dim = 16;
  shape.initializer_range = 0.1;
  rl::model::Decoder model(shape, torch::TensorOptions().dtype(torch::kFloat32), /*random_init=*/true);
  const TokenBatch batch = TinyBatch();
  const torch::Tensor base = BaseLogprobs(*model, batch);
  auto run = [&](bool bf16) {
    TrainingPasses passes(*model, bf16, false);
    model->zero_grad();
    Loss(*model, batch, base, 0.0, true).backward();
    std::vector<torch::Tensor> grads;
    for (const torch::Tensor& p : model->parameters()) grads.push_back(p.grad().reshape({-1}));
    return torch::cat(grads);
  };
  const torch::Tensor f32 = run(false), bf16 = run(true);
  CHECK(bf16.scalar_type() == torch::kFloat32);  // gradients reach the float32 master weights
  const double cosine = (f32 * bf16).sum().item<double>() / (f32.norm() * bf16.norm()).item<double>();
  CHECK(cosine > 0.99);
  CHECK(bf16.norm().item<double>() == Approx(f32.norm().item<double>()).epsilon(0.05));
  auto loss = [&](bool bf16) {
    TrainingPasses passes(*model, bf16, false);
    return Loss(*model, batch, base, 0.0, false).item<double>();
  };
  const double loss_bf16 = loss(true), loss_f32 = loss(false);
  CHECK(loss_bf16 == Approx(loss_f32).epsilon(0.02));
  CHECK(loss_bf16 != loss_f32);  // the products did run in bf16
}

// The bf16 log-prob head against LibTorch's log-softmax of the same bf16 logits, through
// autograd: on an AVX-512 CPU the head runs the fused kernels (rl/model/bf16_fused.h), so
// this checks their wiring (chunks, temperature, the entropy's term, the gradient built in the
// logits' storage). Both round ∂loss/∂logits to bf16 once, at different points of float32's
// rounding, hence the bounds.
TEST_CASE("The bf16 log-prob head gives LibTorch's log-softmax of the same logits", "[loss][gradient][bf16]") {
  torch::manual_seed(11);
  rl::model::DecoderConfig shape = TinyShape();
  shape.vocab_size = 1000;  // rows end inside an unrolled block of the fused kernels
  rl::model::Decoder model(shape, torch::TensorOptions().dtype(torch::kFloat32), /*random_init=*/true);
  TrainingPasses passes(*model, /*bf16=*/true, false);
  const TokenBatch batch = TinyBatch();
  const double t = 0.7;
  const torch::Tensor a = torch::randn({2, 4}), b = torch::randn({2, 4});  // d loss / d (log-prob, entropy)
  auto gradients = [&]() {
    std::vector<torch::Tensor> grads;
    for (const torch::Tensor& p : model->parameters()) grads.push_back(p.grad().reshape({-1}).clone());
    model->zero_grad();
    return torch::cat(grads);
  };

  model->zero_grad();
  const CompletionLogprobs head = ComputeCompletionLogprobs(*model, batch, t, /*chunk=*/3, true);
  ((head.logprobs * a).sum() + (head.entropy * b).sum()).backward();
  const torch::Tensor head_grad = gradients();

  const torch::Tensor hidden = model->Hidden(batch.input_ids, batch.positions, batch.key_mask);
  const torch::Tensor predicting = hidden.narrow(1, batch.prompt_width - 1, 4);
  const torch::Tensor logits =
      torch::matmul(predicting.to(torch::kBFloat16), model->OutputWeight().to(torch::kBFloat16).t());
  const torch::Tensor lsm = torch::log_softmax(logits.to(torch::kFloat32) / t, -1);
  const torch::Tensor logprobs = lsm.gather(-1, batch.completion_ids.unsqueeze(-1)).squeeze(-1) * batch.completion_mask;
  const torch::Tensor entropy = -(lsm.exp() * lsm).sum(-1) * batch.completion_mask;
  ((logprobs * a).sum() + (entropy * b).sum()).backward();
  const torch::Tensor reference_grad = gradients();

  CHECK(torch::allclose(head.logprobs, logprobs, /*rtol=*/1e-5, /*atol=*/1e-5));
  CHECK(torch::allclose(head.entropy, entropy, /*rtol=*/1e-5, /*atol=*/1e-5));
  const double cosine =
      (head_grad * reference_grad).sum().item<double>() / (head_grad.norm() * reference_grad.norm()).item<double>();
  CHECK(cosine > 0.9999);
  CHECK(head_grad.norm().item<double>() == Approx(reference_grad.norm().item<double>()).epsilon(0.005));
}
