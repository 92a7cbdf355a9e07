// The Qwen2 forward pass on tiny random models: cache vs recompute, batching, padding, dtypes,
// and checkpoint round trips.
#include <filesystem>

// LibTorch pulls in glog, whose CHECK macro would replace Catch2's: include Catch2 after it.
#include <torch/torch.h>

#include <catch2/catch.hpp>

#include "rl/model/qwen2.h"
#include "rl/model/safetensors.h"
#include "rl/model/tensor_io.h"
#include "tests/model/temp_dir.h"

using rl::model::KvCache;
using rl::model::ModelError;
using rl::model::Qwen2;
using rl::model::Qwen2Config;
using rl::model::testing::TempDir;

namespace {

// A random model whose outputs are not dominated by the residual stream: a larger init than
// the default 0.02 makes attention patterns and MLPs matter in the comparisons below.
Qwen2 TinyModel(bool tied = true, torch::ScalarType dtype = torch::kFloat32, uint64_t seed = 1) {
  Qwen2Config config = Qwen2Config::Tiny(97);
  config.tie_word_embeddings = tied;
  config.initializer_range = 0.2;
  torch::manual_seed(seed);
  Qwen2 model(config);
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

TEST_CASE("parameter names are Hugging Face's", "[model]") {
  Qwen2 tied = TinyModel(true), untied = TinyModel(false);
  auto names = [](Qwen2& m) {
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
  Qwen2 model = TinyModel();
  const int64_t B = 3, T = 12;
  const torch::Tensor ids = RandomIds(B, T, 97, 7);
  const torch::Tensor full = model->forward(ids, {}, {});  // [B,T,V]

  KvCache cache(model->config(), B, 32, torch::kFloat32, torch::kCPU);
  std::vector<torch::Tensor> steps;
  steps.push_back(model->forward(ids.narrow(1, 0, 5), {}, {}, &cache));  // prefill 5
  for (int64_t t = 5; t < T; ++t) steps.push_back(model->forward(ids.narrow(1, t, 1), {}, {}, &cache));
  CHECK(cache.length() == T);
  const torch::Tensor incremental = torch::cat(steps, 1);
  CHECK(MaxAbsDiff(full, incremental) < 1e-4);
  CHECK(torch::equal(full.argmax(-1), incremental.argmax(-1)));
}
