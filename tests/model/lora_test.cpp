// LoRA adapters on tiny random decoders: a fresh adapter changes nothing, the forward pass equals
// the merged weights', gradients match finite differences, PEFT's files round-trip, and bad
// adapter files are refused by name.
#include <filesystem>
#include <fstream>

// LibTorch pulls in glog, whose CHECK macro would replace Catch2's: include Catch2 after it.
#include <nlohmann/json.hpp>
#include <torch/types.h>
#include <torch/utils.h>

#include "tests/support/catch_torch.h"

#include "rl/model/decoder.h"
#include "rl/model/lora.h"
#include "rl/model/safetensors.h"
#include "rl/model/tensor_io.h"
#include "tests/support/temp_dir.h"

using rl::model::Decoder;
using rl::model::DecoderConfig;
using rl::model::LoraConfig;
using rl::model::ModelError;
using rl::testing::TempDir;

namespace {

Decoder TinyModel(const std::string& model_type = "qwen2", torch::ScalarType dtype = torch::kFloat32) {
  DecoderConfig config = DecoderConfig::Tiny(61);
  config.model_type = model_type;
  config.initializer_range = 0.2;
  torch::manual_seed(3);
  Decoder model(config);
  model->to(dtype);
  model->eval();
  return model;
}

LoraConfig Lora(int64_t r = 4, std::vector<std::string> targets = LoraConfig::KnownTargets()) {
  LoraConfig lora;
  lora.r = r;
  lora.alpha = 8;
  lora.target_modules = std::move(targets);
  lora.base_model_name_or_path = "/models/base";
  return lora;
}

// B starts at zero (no change); give it values so that the adapters matter.
void RandomizeB(Decoder& model, uint64_t seed) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(seed);
  for (auto& [name, t] : rl::model::NamedLoraParameters(*model)) {
    if (name.ends_with("lora_B.weight")) t.normal_(0.0, 0.3);
  }
}

torch::Tensor Ids() {
  torch::manual_seed(11);
  return torch::randint(0, 61, {2, 7}, torch::kLong);
}

torch::Tensor Logits(Decoder& model) {
  torch::NoGradGuard no_grad;
  return model->forward(Ids(), {}, {});
}

double MaxAbsDiff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs().max().item<double>();
}

nlohmann::json ReadJson(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

void WriteJson(const std::string& path, const nlohmann::json& j) { std::ofstream(path) << j.dump(); }

}  // namespace

TEST_CASE("a fresh adapter changes nothing and freezes the base", "[lora]") {
  Decoder model = TinyModel();
  const torch::Tensor before = Logits(model);
  rl::model::AttachLora(*model, Lora(), 5);
  CHECK(MaxAbsDiff(before, Logits(model)) == 0);
  for (const torch::Tensor& p : model->parameters()) CHECK_FALSE(p.requires_grad());
  // 7 targets x 2 layers, A and B each.
  const auto named = rl::model::NamedLoraParameters(*model);
  REQUIRE(named.size() == 28);
  CHECK(named[0].first == "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight");
  CHECK(named[1].first == "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight");
  const DecoderConfig& c = model->config();
  CHECK(named[0].second.sizes() == torch::IntArrayRef({4, c.hidden_size}));
  CHECK(named[1].second.sizes() == torch::IntArrayRef({c.num_attention_heads * c.head_dim, 4}));
  for (const auto& [name, t] : named) CHECK(t.requires_grad());
  // A as PEFT draws it: uniform within ±1/sqrt(in).
  CHECK(named[0].second.abs().max().item<double>() <= 1.0 / std::sqrt(static_cast<double>(c.hidden_size)));
  CHECK_THROWS_AS(rl::model::AttachLora(*model, Lora(), 5), ModelError);
}

TEST_CASE("only the named targets get adapters", "[lora]") {
  Decoder model = TinyModel();
  rl::model::AttachLora(*model, Lora(2, {"q_proj", "v_proj"}), 5);
  const auto named = rl::model::NamedLoraParameters(*model);
  REQUIRE(named.size() == 8);
  for (const auto& [name, t] : named) CHECK((name.find("q_proj") != std::string::npos || name.find("v_proj") != std::string::npos));
  CHECK_THROWS_WITH(rl::model::AttachLora(*TinyModel(), Lora(2, {"q_proj", "lm_head"}), 5),
                    Catch::Contains("'lm_head' is not a linear module"));
}

TEST_CASE("the adapted forward pass equals the merged weights'; disabled, the base's", "[lora]") {
  for (const std::string type : {"qwen2", "qwen3", "llama"}) {
    INFO(type);
    Decoder model = TinyModel(type);
    const torch::Tensor base = Logits(model);
    rl::model::AttachLora(*model, Lora(), 5);
    RandomizeB(model, 7);
    const torch::Tensor adapted = Logits(model);
    CHECK(MaxAbsDiff(adapted, base) > 1e-2);  // the adapters matter
    {
      rl::model::AdaptersDisabled off(*model);
      CHECK(MaxAbsDiff(Logits(model), base) == 0);
    }
    CHECK(MaxAbsDiff(Logits(model), adapted) == 0);  // enabled again

    // Merged weights are W + scale · B A.
    Decoder reference = TinyModel(type);
    const auto& q = model->model->layers[1]->self_attn->q_proj;
    const torch::Tensor expected =
        q->weight + torch::matmul(q->lora->B, q->lora->A).detach() * (8.0 / 4.0);
    rl::model::MergeLora(*model);
    CHECK_FALSE(rl::model::HasLora(*model));
    CHECK(MaxAbsDiff(q->weight, expected) < 1e-6);
    CHECK(MaxAbsDiff(Logits(model), adapted) < 1e-4);
    for (const torch::Tensor& p : model->parameters()) CHECK(p.requires_grad());
  }
}

TEST_CASE("a bf16 copy given the merged weights holds them rounded once", "[lora]") {
  Decoder model = TinyModel();
  rl::model::AttachLora(*model, Lora(), 5);
  RandomizeB(model, 7);
  Decoder copy = rl::model::CloneDecoder(*model, torch::kBFloat16, torch::kCPU);
  const torch::Tensor base_logits = Logits(copy);
  rl::model::CopyMergedWeights(*copy, *model);
  Decoder merged = rl::model::CloneDecoder(*model, torch::kFloat32, torch::kCPU);  // no adapters
  rl::model::CopyMergedWeights(*merged, *model);
  Decoder expected = rl::model::CloneDecoder(*merged, torch::kBFloat16, torch::kCPU);
  auto theirs = expected->named_parameters();
  for (const auto& p : copy->named_parameters()) {
    INFO(p.key());
    CHECK(MaxAbsDiff(p.value(), theirs[p.key()]) == 0);
  }
  CHECK(MaxAbsDiff(Logits(copy), base_logits) > 1e-2);
}

// Issue 13: with bf16 training the frozen base is kept in bf16 (trainer/policy.h: BaseKeptInBf16).
TEST_CASE("a base stored in bf16 computes as the float32 one under bf16 mixed precision", "[lora]") {
  struct Pass {
    torch::Tensor logits;
    std::vector<torch::Tensor> grads;
  };
  auto mixed_pass = [](Decoder& m) {  // as a bf16 training pass computes: logits and adapter gradients
    m->SetComputeDtype(torch::kBFloat16);
    Pass pass;
    pass.logits = m->forward(Ids(), {}, {});
    pass.logits.square().mean().backward();
    for (torch::Tensor& p : rl::model::LoraParameters(*m)) {
      pass.grads.push_back(p.grad().clone());
      p.mutable_grad().zero_();
    }
    m->SetComputeDtype(m->dtype());
    return pass;
  };
  for (const std::string type : {"qwen2", "qwen3"}) {  // q/k/v biases, and none
    INFO(type);
    Decoder model = TinyModel(type);
    rl::model::AttachLora(*model, Lora(), 5);
    RandomizeB(model, 7);
    const Pass f32_base = mixed_pass(model);
    model->StoreLinearsIn(torch::kBFloat16);
    const auto& q = model->model->layers[0]->self_attn->q_proj;
    CHECK(q->weight.scalar_type() == torch::kBFloat16);
    CHECK(model->model->embed_tokens->weight.scalar_type() == torch::kFloat32);  // the residual's dtype
    const Pass bf16_base = mixed_pass(model);
    CHECK(torch::equal(bf16_base.logits, f32_base.logits));
    for (size_t i = 0; i < f32_base.grads.size(); ++i) CHECK(torch::equal(bf16_base.grads[i], f32_base.grads[i]));

    // At float32 the products read the rounded weights: as a float32 model that holds them.
    Decoder rounded = TinyModel(type);
    {
      torch::NoGradGuard no_grad;
      for (auto& p : rounded->named_parameters()) {
        if (p.key().find("proj.") != std::string::npos) p.value().copy_(p.value().to(torch::kBFloat16));
      }
    }
    rl::model::AttachLora(*rounded, Lora(), 5);
    RandomizeB(rounded, 7);
    CHECK(MaxAbsDiff(Logits(model), Logits(rounded)) == 0);
    // Merging widens the base first: rounded base + scale·B·A, not rounded again.
    rl::model::MergeLora(*model);
    rl::model::MergeLora(*rounded);
    CHECK(q->weight.scalar_type() == torch::kFloat32);
    auto theirs = rounded->named_parameters();
    for (const auto& p : model->named_parameters()) CHECK(MaxAbsDiff(p.value(), theirs[p.key()]) == 0);
    // Trained weights (after the merge every weight is) are never narrowed.
    CHECK_THROWS_WITH(model->StoreLinearsIn(torch::kBFloat16), Catch::Contains("requires a gradient"));
  }
}

TEST_CASE("adapter gradients match finite differences", "[lora]") {
  Decoder model = TinyModel("qwen3", torch::kFloat64);
  LoraConfig lora = Lora(3);
  lora.use_rslora = true;  // scale alpha / sqrt(r): also covered
  rl::model::AttachLora(*model, lora, 5);
  RandomizeB(model, 9);
  torch::manual_seed(13);
  // On the hidden states: Logits() returns float32, too coarse for finite differences.
  const torch::Tensor weights = torch::randn({2, 7, model->config().hidden_size}, torch::kFloat64);
  auto loss = [&] { return (model->Hidden(Ids(), {}, {}) * weights).sum(); };
  loss().backward();
  const auto named = rl::model::NamedLoraParameters(*model);
  int checked = 0;
  for (size_t i = 0; i < named.size(); i += 5) {  // A and B of several modules and layers
    const torch::Tensor& t = named[i].second;
    INFO(named[i].first);
    REQUIRE(t.grad().defined());
    for (int64_t k : {int64_t{0}, t.numel() / 2, t.numel() - 1}) {
      const double h = 1e-6;
      double plus = 0, minus = 0;
      {
        torch::NoGradGuard no_grad;
        double* x = t.data_ptr<double>() + k;
        const double saved = *x;
        *x = saved + h;
        plus = loss().item<double>();
        *x = saved - h;
        minus = loss().item<double>();
        *x = saved;
      }
      const double numeric = (plus - minus) / (2 * h);
      const double analytic = t.grad().view(-1)[k].item<double>();
      CHECK(std::abs(numeric - analytic) <= 1e-6 * std::max(1.0, std::abs(numeric)));
      ++checked;
    }
  }
  CHECK(checked >= 15);
  for (const torch::Tensor& p : model->parameters()) CHECK_FALSE(p.grad().defined());
}

TEST_CASE("dropout acts only while training with a gradient", "[lora]") {
  Decoder model = TinyModel();
  LoraConfig lora = Lora();
  lora.dropout = 0.5;
  rl::model::AttachLora(*model, lora, 5);
  RandomizeB(model, 7);
  model->train();
  const torch::Tensor a = Logits(model), b = Logits(model);  // no gradient: no dropout
  CHECK(MaxAbsDiff(a, b) == 0);
  const torch::Tensor c = model->forward(Ids(), {}, {});
  CHECK(MaxAbsDiff(a, c) > 1e-3);
  model->eval();
  CHECK(MaxAbsDiff(a, model->forward(Ids(), {}, {})) < 1e-6);
}

TEST_CASE("an adapter round-trips through PEFT's files", "[lora]") {
  TempDir dir;
  Decoder model = TinyModel("llama");
  const LoraConfig lora = Lora(4, {"q_proj", "k_proj", "v_proj", "o_proj", "down_proj"});
  rl::model::AttachLora(*model, lora, 5);
  RandomizeB(model, 7);
  rl::model::SaveLoraAdapter(*model, lora, dir.str());

  const nlohmann::json config = ReadJson(dir / "adapter_config.json");
  CHECK(config["peft_type"] == "LORA");
  CHECK(config["task_type"] == "CAUSAL_LM");
  CHECK(config["r"] == 4);
  CHECK(config["lora_alpha"] == 8.0);
  CHECK(config["base_model_name_or_path"] == "/models/base");
  CHECK(config["target_modules"].size() == 5);
  const auto file = rl::model::SafetensorsFile::Open(dir / "adapter_model.safetensors");
  CHECK(file.tensors().size() == 20);
  const auto& a = file.Get("base_model.model.model.layers.1.mlp.down_proj.lora_A.weight");
  CHECK(a.shape == std::vector<int64_t>{4, model->config().intermediate_size});
  CHECK(a.dtype == rl::model::Dtype::kF32);

  Decoder loaded = TinyModel("llama");
  const LoraConfig read = rl::model::LoadLoraAdapter(*loaded, dir.str());
  CHECK(read.r == 4);
  CHECK(read.target_modules == lora.target_modules);
  CHECK(MaxAbsDiff(Logits(loaded), Logits(model)) == 0);
}

TEST_CASE("bad adapter files are refused by name", "[lora]") {
  TempDir dir;
  Decoder model = TinyModel();
  const LoraConfig lora = Lora(4, {"q_proj", "v_proj"});
  rl::model::AttachLora(*model, lora, 5);
  rl::model::SaveLoraAdapter(*model, lora, dir.str());
  const nlohmann::json good = ReadJson(dir / "adapter_config.json");

  SECTION("another rank") {
    nlohmann::json j = good;
    j["r"] = 8;
    WriteJson(dir / "adapter_config.json", j);
    CHECK_THROWS_WITH(rl::model::LoadLoraAdapter(*TinyModel(), dir.str()),
                      Catch::Contains("does not match this model and r"));
  }
  SECTION("fewer targets than the file holds") {
    nlohmann::json j = good;
    j["target_modules"] = {"q_proj"};
    WriteJson(dir / "adapter_config.json", j);
    CHECK_THROWS_WITH(rl::model::LoadLoraAdapter(*TinyModel(), dir.str()),
                      Catch::Contains("not an adapter of this model's target modules"));
  }
  SECTION("more targets than the file holds") {
    nlohmann::json j = good;
    j["target_modules"] = {"q_proj", "v_proj", "up_proj"};
    WriteJson(dir / "adapter_config.json", j);
    CHECK_THROWS_WITH(rl::model::LoadLoraAdapter(*TinyModel(), dir.str()),
                      Catch::Contains("up_proj.lora_A.weight' is missing"));
  }
  SECTION("DoRA") {
    nlohmann::json j = good;
    j["use_dora"] = true;
    WriteJson(dir / "adapter_config.json", j);
    CHECK_THROWS_WITH(rl::model::LoadLoraAdapter(*TinyModel(), dir.str()),
                      Catch::Contains("\"use_dora\": DoRA is not supported"));
  }
  SECTION("all-linear reads as every target") {
    nlohmann::json j = good;
    j["target_modules"] = "all-linear";
    CHECK(LoraConfig::FromJson(j, "x").target_modules == LoraConfig::KnownTargets());
  }
}
