// The decoder's forward pass on tiny random models: cache vs recompute, batching, padding, dtypes,
// and checkpoint round trips.
#include <filesystem>

// LibTorch pulls in glog, whose CHECK macro would replace Catch2's: include Catch2 after it.
#include <torch/types.h>
#include <torch/nn/functional/loss.h>
#include <torch/utils.h>

#include "tests/support/catch_torch.h"

#include "common/blas_kernels.h"
#include "rl/model/decoder.h"
#include "rl/model/safetensors.h"
#include "rl/model/tensor_io.h"
#include "tests/support/temp_dir.h"

using rl::model::KvCache;
using rl::model::ModelError;
using rl::model::Decoder;
using rl::model::DecoderConfig;
using rl::testing::TempDir;

namespace {

// A random model whose outputs are not dominated by the residual stream: a larger init than
// the default 0.02 makes attention patterns and MLPs matter in the comparisons below.
Decoder TinyModel(bool tied = true, torch::ScalarType dtype = torch::kFloat32, uint64_t seed = 1) {
  DecoderConfig config = DecoderConfig::Tiny(97);
  config.tie_word_embeddings = tied;
  config.initializer_range = 0.2;
  torch::manual_seed(seed);
  Decoder model(config);
  model->to(dtype);
  model->eval();
  return model;
}

torch::Tensor RandomIds(int64_t B, int64_t T, int64_t vocab, uint64_t seed) {
  torch::manual_seed(seed);
  return torch::randint(0, vocab, {B, T}, torch::kLong);
}

double MaxAbsDiff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs().max().item<double>();
}

}  // namespace

// The test main, like every program that runs LibTorch's products (rl train, the benches),
// starts through RestartForBlasKernels: float32 products then run on kernels the CPU offers (on
// the Emerald Rapids VM OpenBLAS 0.3.21 chose its SSE3 ones, 2.7-3.2x slower in the float32
// quickstart).
TEST_CASE("LibTorch's OpenBLAS runs kernels that fit the CPU", "[model]") {
  const std::string chosen = rl::common::BlasKernels();
  INFO("OpenBLAS kernels: " << (chosen.empty() ? "(no OpenBLAS)" : chosen));
  CHECK(rl::common::BetterBlasKernels(chosen, rl::common::DetectCpuVectorUnits()).empty());
}

TEST_CASE("parameter names are Hugging Face's", "[model]") {
  Decoder tied = TinyModel(true), untied = TinyModel(false);
  auto names = [](Decoder& m) {
    std::vector<std::string> out;
    for (const auto& p : m->named_parameters()) out.push_back(p.key());
    return out;
  };
  const auto t = names(tied);
  CHECK(std::find(t.begin(), t.end(), "model.embed_tokens.weight") != t.end());
  CHECK(std::find(t.begin(), t.end(), "model.layers.1.self_attn.q_proj.bias") != t.end());
  CHECK(std::find(t.begin(), t.end(), "model.layers.1.self_attn.o_proj.weight") != t.end());
  CHECK(std::find(t.begin(), t.end(), "model.layers.1.self_attn.o_proj.bias") == t.end());
  CHECK(std::find(t.begin(), t.end(), "model.layers.0.mlp.gate_proj.weight") != t.end());
  CHECK(std::find(t.begin(), t.end(), "model.layers.0.post_attention_layernorm.weight") != t.end());
  CHECK(std::find(t.begin(), t.end(), "model.norm.weight") != t.end());
  CHECK(std::find(t.begin(), t.end(), "lm_head.weight") == t.end());
  // 2 layers × (4 norms/projections with bias: q,k,v w+b = 6, o 1, mlp 3, norms 2) + embed + norm
  CHECK(t.size() == 2 * 12 + 2);
  const auto u = names(untied);
  CHECK(std::find(u.begin(), u.end(), "lm_head.weight") != u.end());
  CHECK(u.size() == t.size() + 1);
}

TEST_CASE("KV-cache decoding equals full recompute", "[model]") {
  torch::NoGradGuard no_grad;
  Decoder model = TinyModel();
  const int64_t B = 3, T = 12;
  const torch::Tensor ids = RandomIds(B, T, 97, 7);
  const torch::Tensor full = model->forward(ids, {}, {});  // [B,T,V]

  KvCache cache(model->config(), B, 32, torch::kFloat32, torch::kCPU);
  std::vector<torch::Tensor> steps;
  steps.push_back(model->forward(ids.narrow(1, 0, 5), {}, {}, &cache));  // prefill 5
  for (int64_t t = 5; t < T; ++t)
    steps.push_back(model->forward(ids.narrow(1, t, 1), {}, {}, &cache));
  CHECK(cache.length() == T);
  const torch::Tensor incremental = torch::cat(steps, 1);
  CHECK(MaxAbsDiff(full, incremental) < 1e-4);
  CHECK(torch::equal(full.argmax(-1), incremental.argmax(-1)));
}

namespace {

// A Qwen3 (q/k norms, head_dim unlike hidden / heads) and a Llama 3 (llama3 RoPE scaling, every
// bias on) of the tiny shape, random as TinyModel.
Decoder ArchitectureModel(const std::string& model_type) {
  DecoderConfig config = DecoderConfig::Tiny(97);
  config.model_type = model_type;
  config.initializer_range = 0.2;
  if (model_type == "qwen3") config.head_dim = 24;
  if (model_type == "llama") {
    config.rope_scaling = {"llama3", 8.0, 1.0, 4.0, 16};
    config.attention_bias = true;
    config.mlp_bias = true;
  }
  torch::manual_seed(3);
  Decoder model(config);
  torch::NoGradGuard no_grad;
  for (auto& p : model->named_parameters()) {  // norms and biases random too: none may hide
    if (p.key().ends_with("norm.weight")) p.value().normal_(1.0, 0.2);
    if (p.key().ends_with(".bias")) p.value().normal_(0.0, 0.2);
  }
  model->eval();
  return model;
}

std::vector<std::string> NamesOf(Decoder& model) {
  std::vector<std::string> out;
  for (const auto& p : model->named_parameters()) out.push_back(p.key());
  return out;
}

}  // namespace

TEST_CASE("Qwen3 and Llama 3: their parameters, and KV-cache decoding equal to recompute", "[model]") {
  for (const std::string type : {"qwen3", "llama"}) {
    INFO(type);
    Decoder model = ArchitectureModel(type);
    const std::vector<std::string> names = NamesOf(model);
    auto has = [&](const char* name) { return std::find(names.begin(), names.end(), name) != names.end(); };
    CHECK(has("model.layers.1.self_attn.q_norm.weight") == (type == "qwen3"));
    CHECK(has("model.layers.1.self_attn.k_norm.weight") == (type == "qwen3"));
    CHECK(has("model.layers.1.self_attn.q_proj.bias") == (type == "llama"));
    CHECK(has("model.layers.1.self_attn.o_proj.bias") == (type == "llama"));
    CHECK(has("model.layers.0.mlp.down_proj.bias") == (type == "llama"));
    torch::NoGradGuard no_grad;
    const torch::Tensor ids = RandomIds(2, 20, 97, 8);  // positions past the original context of 16
    const torch::Tensor full = model->forward(ids, {}, {});
    KvCache cache(model->config(), 2, 24, torch::kFloat32, torch::kCPU);
    std::vector<torch::Tensor> steps = {model->forward(ids.narrow(1, 0, 7), {}, {}, &cache)};
    for (int64_t t = 7; t < 20; ++t) steps.push_back(model->forward(ids.narrow(1, t, 1), {}, {}, &cache));
    const torch::Tensor incremental = torch::cat(steps, 1);
    CHECK(MaxAbsDiff(full, incremental) < 1e-4);
    CHECK(torch::equal(full.argmax(-1), incremental.argmax(-1)));
  }
}

TEST_CASE("Qwen3 and Llama 3 checkpoints round-trip as their own architecture", "[model]") {
  for (const std::string type : {"qwen3", "llama"}) {
    INFO(type);
    Decoder model = ArchitectureModel(type);
    TempDir dir;
    rl::model::SaveDecoder(model, dir.str(), torch::kFloat32);
    Decoder loaded = rl::model::LoadDecoder(dir.str(), torch::kFloat32, torch::kCPU);
    CHECK(loaded->config().model_type == type);
    CHECK(loaded->config().rope_scaling.type == model->config().rope_scaling.type);
    torch::NoGradGuard no_grad;
    const torch::Tensor ids = RandomIds(1, 9, 97, 4);
    CHECK(torch::equal(model->forward(ids, {}, {}), loaded->forward(ids, {}, {})));
  }
}

namespace {

// Left-pads `prompts` into one batch: ids [B,T], positions [B,T] (0 at the first real token),
// key_mask [B,T]. Pad slots hold arbitrary ids: they must not matter.
struct Padded {
  torch::Tensor ids, positions, mask;
};
Padded LeftPad(const std::vector<std::vector<int64_t>>& prompts, int64_t extra_pad = 0) {
  int64_t T = 0;
  for (const auto& p : prompts) T = std::max<int64_t>(T, static_cast<int64_t>(p.size()));
  T += extra_pad;
  const int64_t B = static_cast<int64_t>(prompts.size());
  Padded out{torch::full({B, T}, 5, torch::kLong), torch::zeros({B, T}, torch::kLong),
             torch::zeros({B, T}, torch::kBool)};
  for (int64_t b = 0; b < B; ++b) {
    const int64_t n = static_cast<int64_t>(prompts[b].size()), pad = T - n;
    for (int64_t t = 0; t < n; ++t) {
      out.ids[b][pad + t] = prompts[b][t];
      out.positions[b][pad + t] = t;
      out.mask[b][pad + t] = true;
    }
    for (int64_t t = 0; t < pad; ++t) out.ids[b][t] = (b * 31 + t * 7) % 97;
  }
  return out;
}

// Greedy decoding with the cache: `steps` new tokens per row, and the logits of every step.
std::pair<torch::Tensor, std::vector<torch::Tensor>> GreedyDecode(Decoder& model, const Padded& batch,
                                                                  int64_t steps) {
  const int64_t B = batch.ids.size(0), T = batch.ids.size(1);
  KvCache cache(model->config(), B, T + steps, model->dtype(), torch::kCPU);
  torch::Tensor mask = batch.mask;
  torch::Tensor next_pos = batch.positions.select(1, -1) + 1;  // [B]
  torch::Tensor logits =
      model->Logits(model->Hidden(batch.ids, batch.positions, mask, &cache).select(1, -1));
  std::vector<torch::Tensor> all_logits{logits};
  std::vector<torch::Tensor> tokens;
  for (int64_t s = 0; s < steps; ++s) {
    const torch::Tensor next = logits.argmax(-1);  // [B]
    tokens.push_back(next);
    if (s + 1 == steps) break;
    mask = torch::cat({mask, torch::ones({B, 1}, torch::kBool)}, 1);
    logits = model->Logits(
        model->Hidden(next.unsqueeze(1), next_pos.unsqueeze(1), mask, &cache).select(1, -1));
    all_logits.push_back(logits);
    next_pos = next_pos + 1;
  }
  return {torch::stack(tokens, 1), all_logits};
}

}  // namespace

TEST_CASE("batched equals unbatched, with left padding", "[model]") {
  torch::NoGradGuard no_grad;
  Decoder model = TinyModel(/*tied=*/false);
  const std::vector<std::vector<int64_t>> prompts = {
      {3, 14, 15, 92, 65, 35}, {89, 79}, {32, 38, 46, 26}};
  const auto [batched_tokens, batched_logits] = GreedyDecode(model, LeftPad(prompts), 8);
  for (size_t b = 0; b < prompts.size(); ++b) {
    const auto [tokens, logits] = GreedyDecode(model, LeftPad({prompts[b]}), 8);
    INFO("row " << b);
    CHECK(torch::equal(tokens[0], batched_tokens[b]));
    for (size_t s = 0; s < logits.size(); ++s)
      CHECK(MaxAbsDiff(logits[s][0], batched_logits[s][b]) < 1e-4);
  }
}

TEST_CASE("left padding does not change real positions", "[model]") {
  torch::NoGradGuard no_grad;
  Decoder model = TinyModel();
  const std::vector<int64_t> prompt = {11, 22, 33, 44, 55};
  const Padded plain = LeftPad({prompt});
  const torch::Tensor reference =
      model->forward(plain.ids, plain.positions, plain.mask);  // [1,5,V]
  for (int64_t pad : {1, 4, 9}) {
    const Padded padded = LeftPad({prompt}, pad);
    const torch::Tensor logits = model->forward(padded.ids, padded.positions, padded.mask);
    INFO("pad " << pad);
    CHECK(MaxAbsDiff(logits.narrow(1, pad, 5), reference) < 1e-4);
    CHECK(torch::isfinite(logits).all().item<bool>());  // padding queries see no key: still finite
  }
}

TEST_CASE("Hidden refuses inconsistent arguments", "[model]") {
  torch::NoGradGuard no_grad;
  Decoder model = TinyModel();
  const torch::Tensor ids = RandomIds(2, 4, 97, 3);
  CHECK_THROWS_AS(model->Hidden(ids.to(torch::kInt), {}, {}), ModelError);
  CHECK_THROWS_WITH(model->Hidden(ids, {}, torch::ones({2, 3}, torch::kBool)),
                    Catch::Contains("key_mask"));
  CHECK_THROWS_WITH(model->Hidden(ids, torch::zeros({2, 5}, torch::kLong), {}),
                    Catch::Contains("positions"));
  KvCache small(model->config(), 2, 5, torch::kFloat32, torch::kCPU);
  model->Hidden(ids, {}, {}, &small);
  CHECK_THROWS_WITH(model->Hidden(ids, {}, {}, &small), Catch::Contains("capacity"));
  KvCache other_batch(model->config(), 3, 8, torch::kFloat32, torch::kCPU);
  CHECK_THROWS_WITH(model->Hidden(ids, {}, {}, &other_batch), Catch::Contains("batch"));
  KvCache other_dtype(model->config(), 2, 8, torch::kBFloat16, torch::kCPU);
  CHECK_THROWS_WITH(model->Hidden(ids, {}, {}, &other_dtype), Catch::Contains("dtype"));
}

TEST_CASE("KvCache SelectBatch repeats a prefilled prompt", "[model]") {
  torch::NoGradGuard no_grad;
  Decoder model = TinyModel();
  const torch::Tensor prompt = RandomIds(1, 6, 97, 9);
  KvCache cache(model->config(), 1, 10, torch::kFloat32, torch::kCPU);
  model->Hidden(prompt, {}, {}, &cache);
  cache.SelectBatch(torch::tensor({0, 0, 0}, torch::kLong));
  CHECK(cache.batch() == 3);
  CHECK(cache.length() == 6);
  const torch::Tensor next = torch::tensor({{1}, {2}, {3}}, torch::kLong);
  const torch::Tensor step = model->forward(next, {}, {}, &cache);  // [3,1,V]
  for (int64_t b = 0; b < 3; ++b) {
    const torch::Tensor full =
        model->forward(torch::cat({prompt, next[b].unsqueeze(0)}, 1), {}, {});
    CHECK(MaxAbsDiff(full.select(1, -1), step[b].select(0, 0).unsqueeze(0)) < 1e-4);
  }
  cache.Truncate(2);
  CHECK(cache.length() == 2);
  CHECK_THROWS_AS(cache.Truncate(3), ModelError);
}

TEST_CASE("bfloat16 path", "[model]") {
  torch::NoGradGuard no_grad;
  Decoder model32 = TinyModel();
  Decoder model16 = rl::model::CloneDecoder(*model32, torch::kBFloat16, torch::kCPU);
  CHECK(model16->dtype() == torch::kBFloat16);
  const torch::Tensor ids = RandomIds(2, 10, 97, 5);
  const torch::Tensor logits32 = model32->forward(ids, {}, {});
  const torch::Tensor logits16 = model16->forward(ids, {}, {});
  CHECK(logits16.scalar_type() == torch::kFloat32);  // Logits always returns float32
  CHECK(torch::isfinite(logits16).all().item<bool>());
  const double scale = logits32.abs().max().item<double>();
  CHECK(MaxAbsDiff(logits16, logits32) < 0.1 * scale);
  const double agree =
      (logits16.argmax(-1) == logits32.argmax(-1)).to(torch::kFloat32).mean().item<double>();
  CHECK(agree >= 0.8);
  // The bf16 cache path agrees with bf16 recompute.
  KvCache cache(model16->config(), 2, 10, torch::kBFloat16, torch::kCPU);
  model16->forward(ids.narrow(1, 0, 9), {}, {}, &cache);
  const torch::Tensor last = model16->forward(ids.narrow(1, 9, 1), {}, {}, &cache);
  CHECK(MaxAbsDiff(last.select(1, 0), logits16.select(1, 9)) < 0.05 * scale);
}

TEST_CASE("bfloat16 products on the CPU kernels agree with LibTorch's", "[model][bf16_gemm]") {
  torch::NoGradGuard no_grad;
  // Sums of 256 and 1024 products. (The bits mostly agree with LibTorch's: float32 sums in
  // another order rarely round to another bf16.)
  DecoderConfig config = DecoderConfig::Tiny(97);
  config.hidden_size = 256;
  config.intermediate_size = 1024;
  config.head_dim = 64;
  config.tie_word_embeddings = false;
  torch::manual_seed(8);
  Decoder model(config, torch::TensorOptions().dtype(torch::kBFloat16));
  model->eval();
  const torch::Tensor ids = RandomIds(2, 2, 97, 6);  // 4 rows: within every kernel's limit
  model->UseBf16Kernel(rl::model::Bf16Kernel::kNone);
  const torch::Tensor reference = model->forward(ids, {}, {});
  const double scale = reference.abs().max().item<double>();
  for (auto kernel : {rl::model::Bf16Kernel::kAvx2, rl::model::Bf16Kernel::kAvx512,
                      rl::model::Bf16Kernel::kAmx}) {
    if (!rl::model::Bf16KernelSupported(kernel)) {
      CHECK_THROWS_AS(model->UseBf16Kernel(kernel), ModelError);
      continue;
    }
    INFO(rl::model::Bf16KernelName(kernel));
    model->UseBf16Kernel(kernel);
    const torch::Tensor logits = model->forward(ids, {}, {});
    CHECK(MaxAbsDiff(logits, reference) < 0.05 * scale);
    const double agree =
        (logits.argmax(-1) == reference.argmax(-1)).to(torch::kFloat32).mean().item<double>();
    CHECK(agree >= 0.9);
  }
}

TEST_CASE("Bf16Linear refuses what its kernels cannot read", "[model]") {
  const rl::model::Bf16Kernel kernel = rl::model::BestBf16Kernel();
  if (kernel == rl::model::Bf16Kernel::kNone) return;  // no kernel on this CPU
  const auto bf16 = torch::TensorOptions().dtype(torch::kBFloat16);
  const torch::Tensor x = torch::randn({3, 8}).to(torch::kBFloat16), w = torch::randn({5, 8}).to(torch::kBFloat16);
  const torch::Tensor y = rl::model::Bf16Linear(x, w, {}, kernel);
  CHECK(MaxAbsDiff(y, torch::linear(x, w)) < 0.05 * torch::linear(x, w).abs().max().item<double>());
  CHECK_THROWS_AS(rl::model::Bf16Linear(x.to(torch::kFloat32), w, {}, kernel), std::invalid_argument);
  CHECK_THROWS_AS(rl::model::Bf16Linear(x, torch::randn({8, 5}, bf16).t(), {}, kernel), std::invalid_argument);
  CHECK_THROWS_AS(rl::model::Bf16Linear(x, torch::randn({5, 7}, bf16), {}, kernel), std::invalid_argument);
  CHECK_THROWS_AS(rl::model::Bf16Linear(x, w, torch::zeros({4}, bf16), kernel), std::invalid_argument);
}

TEST_CASE("gradients reach every parameter", "[model]") {
  Decoder model = TinyModel();
  model->train();
  const torch::Tensor ids = RandomIds(2, 6, 97, 4);
  const torch::Tensor logits = model->forward(ids, {}, {});
  torch::nn::functional::cross_entropy(logits.reshape({-1, 97}), ids.reshape({-1})).backward();
  for (const auto& p : model->named_parameters()) {
    INFO(p.key());
    REQUIRE(p.value().grad().defined());
    CHECK(p.value().grad().abs().sum().item<double>() > 0);
  }
}

// In mixed precision SwiGLU's product runs on the fused bf16 kernels (rl/model/bf16_fused.h)
// where the CPU has AVX-512. They round once per output where LibTorch's bf16 silu rounds its
// intermediates too, so the two agree within bf16's rounding: checked on the MLP's output and
// gradients, against LibTorch's operations on the same bf16 casts. (Elsewhere both sides are
// LibTorch's.)
TEST_CASE("the mixed-precision MLP's SwiGLU gives LibTorch's values and gradients", "[model][bf16_fused]") {
  DecoderConfig config = DecoderConfig::Tiny(97);
  config.hidden_size = 64;
  config.intermediate_size = 100;  // 17 × 100 elements: vectors and a tail
  torch::manual_seed(9);
  rl::model::Mlp mlp(config, torch::TensorOptions().dtype(torch::kFloat32));
  for (auto& p : mlp->parameters()) p.detach().normal_(0.0, 0.5);
  for (auto* linear : {mlp->gate_proj.get(), mlp->up_proj.get(), mlp->down_proj.get()}) {
    linear->compute_dtype = torch::kBFloat16;
  }
  const torch::Tensor x = torch::randn({1, 17, 64}).mul(2).requires_grad_(true);
  const torch::Tensor d_y = torch::randn({1, 17, 64}).to(torch::kBFloat16);
  auto run = [&](bool fused) {
    torch::Tensor y = fused ? mlp->forward(x)
                            : mlp->down_proj(torch::silu(mlp->gate_proj(x)) * mlp->up_proj(x));
    mlp->zero_grad();
    x.mutable_grad() = torch::Tensor();
    y.backward(d_y);
    std::vector<torch::Tensor> out = {y.detach(), x.grad()};
    for (const auto& p : mlp->parameters()) out.push_back(p.grad());
    return out;
  };
  const auto fused = run(true), reference = run(false);
  for (size_t i = 0; i < fused.size(); ++i) {
    INFO("tensor " << i << " (0: output, 1: input gradient, then the weights' gradients)");
    const torch::Tensor a = fused[i].to(torch::kFloat32), b = reference[i].to(torch::kFloat32);
    CHECK(a.abs().sum().item<double>() > 0);
    // Sums of 64-100 products of values each within a bf16 step (2^-8 relative) of the other's.
    CHECK((a - b).abs().max().item<double>() < 0.02 * b.abs().max().item<double>());
    const double cosine = (a * b).sum().item<double>() / (a.norm() * b.norm()).item<double>();
    CHECK(cosine > 0.9999);
    CHECK(a.norm().item<double>() == Approx(b.norm().item<double>()).epsilon(0.003));  // roundings average out
  }
}
