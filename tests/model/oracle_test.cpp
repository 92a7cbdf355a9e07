// Compares our decoder's logits (Qwen2, Qwen3, Llama 3) with an independent reference
// implementation of the published equations (tests/oracle/decoder_reference.py, plain torch
// under Debian's /usr/bin/python3).
// Tiny random checkpoints are written with SaveDecoder; every parameter, biases and norms
// included, is random so that no term of the equations can hide. Our float32 model is compared
// with the oracle in float32 and float64 (to 1e-4), our bfloat16 model with the oracle in
// bfloat16 (to a few bf16 ulps), which checks where the bf16 path rounds. A plain program, not
// Catch2, so that it can report a skip to CTest (exit code 77) when that python has no torch.
// Two cases add random LoRA adapters, computed unmerged by us and merged by the oracle from the
// PEFT-layout files we wrote.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>

#include <torch/types.h>
#include <torch/utils.h>

#include <nlohmann/json.hpp>

#include "common/blas_kernels.h"
#include "rl/model/decoder.h"
#include "rl/model/lora.h"
#include "rl/model/safetensors.h"
#include "rl/model/tensor_io.h"
#include "tests/support/temp_dir.h"

namespace {

constexpr int kSkip = 77;
constexpr double kTolerance = 1e-4;
// A few bfloat16 ulps at |logit| ~ 1 (2^-8 each): room for another BLAS kernel's summation order.
constexpr double kBf16Tolerance = 2e-2;
// With an adapter, more: we merge W + scale·B·A in float32 and the oracle in float64, so a merged
// weight can round to the neighbouring bf16 value. qwen3+lora differed by 0.024 on a Sapphire
// Rapids VM (LibTorch's kernels or ours alike) and by under 0.02 on an AMD EPYC. A wrong scale or
// orientation of A and B moves the logits by far more.
constexpr double kBf16MergedTolerance = 5e-2;

std::string Python() {
  const char* env = std::getenv("RL_ORACLE_PYTHON");
  return env != nullptr ? env : "/usr/bin/python3";
}

rl::model::Decoder RandomModel(const rl::model::DecoderConfig& config, uint64_t seed) {
  torch::manual_seed(seed);
  rl::model::Decoder model(config);
  torch::NoGradGuard no_grad;
  for (auto& p : model->named_parameters()) {
    if (p.key().ends_with("norm.weight")) {
      p.value().normal_(1.0, 0.2);
    } else {
      p.value().normal_(0.0, 0.15);
    }
  }
  return model;
}

// With `lora`: our model carries random adapters (computed unmerged), saved in PEFT's layout,
// and the oracle merges them from the files.
std::string AttachRandomLora(rl::model::Decoder& model, const rl::model::LoraConfig& lora, const std::string& dir,
                             uint64_t seed) {
  if (!lora.enabled()) return "";
  rl::model::AttachLora(*model, lora, seed);
  torch::NoGradGuard no_grad;
  for (auto& [name, t] : rl::model::NamedLoraParameters(*model)) {
    if (name.ends_with("lora_B.weight")) t.normal_(0.0, 0.2);
  }
  rl::model::SaveLoraAdapter(*model, lora, dir);
  return " --adapter " + dir;
}

// Runs one configuration with the oracle computing in `oracle_dtype` (float32: the same
// arithmetic as ours; float64: the exact equations up to fp32 rounding on our side). Returns the
// max |ours - reference| over real positions, or -1 when the oracle could not run.
double Compare(const std::string& name, const rl::model::DecoderConfig& config, uint64_t seed,
               const std::string& oracle_dtype, const rl::model::LoraConfig& lora = {}) {
  rl::testing::TempDir dir;
  rl::model::Decoder model = RandomModel(config, seed);
  rl::model::SaveDecoder(model, dir.str(), torch::kFloat32);
  const std::string adapter = AttachRandomLora(model, lora, dir / "adapter", seed + 7);

  // Two rows: a full one, and one left-padded by 3 whose positions start at 0.
  const int64_t B = 2, T = 11, pad = 3;
  torch::manual_seed(seed + 1);
  const torch::Tensor ids = torch::randint(0, config.vocab_size, {B, T}, torch::kLong);
  torch::Tensor mask = torch::ones({B, T}, torch::kBool);
  mask[1].narrow(0, 0, pad).fill_(false);
  const torch::Tensor positions = (mask.to(torch::kLong).cumsum(1) - 1).clamp_min(0);
  nlohmann::json request = {{"input_ids", std::vector<std::vector<int64_t>>{}},
                            {"attention_mask", nlohmann::json::array()}};
  for (int64_t b = 0; b < B; ++b) {
    std::vector<int64_t> row(ids[b].data_ptr<int64_t>(), ids[b].data_ptr<int64_t>() + T);
    std::vector<int> m;
    for (int64_t t = 0; t < T; ++t) m.push_back(mask[b][t].item<bool>() ? 1 : 0);
    request["input_ids"].push_back(row);
    request["attention_mask"].push_back(m);
  }
  std::ofstream(dir / "input.json") << request.dump();

  const std::string command = Python() + " " + RL_TESTS_DIR +
                              "/oracle/decoder_reference.py --model " + dir.str() + " --input " +
                              (dir / "input.json") + " --output " +
                              (dir / "reference.safetensors") + " --dtype " + oracle_dtype + adapter;
  if (std::system(command.c_str()) != 0) {
    std::cerr << "FAIL " << name << ": the oracle failed: " << command << "\n";
    return -1;
  }
  const auto file = rl::model::SafetensorsFile::Open(dir / "reference.safetensors");
  const torch::Tensor reference = rl::model::ToTensor(file.Get("logits"));

  torch::NoGradGuard no_grad;
  // In bfloat16 both sides round at the same points (norm outputs, RoPE tables, attention
  // probabilities), so they stay close; float32 and float64 oracles compare our float32 model.
  auto bf16 = [&] {  // adapters merged into the bf16 copy, as the trainer's sampling copy
    rl::model::Decoder copy = rl::model::CloneDecoder(*model, torch::kBFloat16, torch::kCPU);
    if (lora.enabled()) rl::model::CopyMergedWeights(*copy, *model);
    return copy;
  };
  const torch::Tensor ours = oracle_dtype == "bfloat16" ? bf16()->forward(ids, positions, mask)
                                                        : model->forward(ids, positions, mask);
  if (ours.sizes() != reference.sizes()) {
    std::cerr << "FAIL " << name << ": shapes " << ours.sizes() << " vs " << reference.sizes()
              << "\n";
    return -1;
  }
  const torch::Tensor real = mask.unsqueeze(-1).expand_as(ours);
  const double diff = (ours - reference).abs().masked_select(real).max().item<double>();
  const double scale = reference.abs().masked_select(real).mean().item<double>();
  std::cout << name << " vs " << oracle_dtype << " oracle: max |ours - reference| = " << diff
            << " (mean |logit| " << scale << ")\n";
  return diff;
}

}  // namespace

int main(int, char** argv) {
  rl::common::RestartForBlasKernels(argv);  // first: it may start the program again
  rl::model::ConfigureThreads(1);
  if (std::system((Python() + " -c 'import torch' 2>/dev/null").c_str()) != 0) {
    std::cout << "SKIP: " << Python()
              << " cannot import torch (install python3-torch); the decoder oracle was not run\n";
    return kSkip;
  }
  // Grouped-query attention with tied embeddings; then one key/value head per query head, an
  // explicit head_dim unlike hidden/heads, another rope_theta and an untied head.
  rl::model::DecoderConfig gqa = rl::model::DecoderConfig::Tiny(211);
  rl::model::DecoderConfig mha = rl::model::DecoderConfig::Tiny(173);
  mha.num_attention_heads = 3;
  mha.num_key_value_heads = 3;
  mha.head_dim = 24;
  mha.num_hidden_layers = 3;
  mha.rope_theta = 1e6;
  mha.rms_norm_eps = 1e-5;
  mha.tie_word_embeddings = false;
  // Qwen3: per-head q/k norms, no biases, heads x head_dim (4 x 24 = 96) unlike hidden (64).
  rl::model::DecoderConfig qwen3 = rl::model::DecoderConfig::Tiny(199);
  qwen3.model_type = "qwen3";
  qwen3.head_dim = 24;
  qwen3.tie_word_embeddings = false;
  // Qwen3 with attention_bias (q/k/v/o biases).
  rl::model::DecoderConfig qwen3_bias = qwen3;
  qwen3_bias.attention_bias = true;
  qwen3_bias.tie_word_embeddings = true;
  // Llama 3: llama3 RoPE scaling whose three bands (kept, blended, divided) all occur for
  // head_dim 16 and an original context of 64; then all biases on.
  rl::model::DecoderConfig llama = rl::model::DecoderConfig::Tiny(181);
  llama.model_type = "llama";
  llama.rope_theta = 500000.0;
  llama.rope_scaling = {"llama3", 8.0, 1.0, 4.0, 64};
  rl::model::DecoderConfig llama_bias = llama;
  llama_bias.attention_bias = true;
  llama_bias.mlp_bias = true;
  llama_bias.tie_word_embeddings = false;
  bool ok = true;
  // LoRA on every linear module (rsLoRA's scale), and on two of them.
  rl::model::LoraConfig all_linear;
  all_linear.r = 4;
  all_linear.alpha = 6;
  all_linear.use_rslora = true;
  rl::model::LoraConfig qv = all_linear;
  qv.r = 2;
  qv.use_rslora = false;
  qv.target_modules = {"q_proj", "v_proj"};
  for (const auto& [name, config, seed, lora] :
       {std::tuple{"gqa-tied", gqa, 1, rl::model::LoraConfig{}}, std::tuple{"mha-untied", mha, 2, rl::model::LoraConfig{}},
        std::tuple{"qwen3", qwen3, 3, rl::model::LoraConfig{}}, std::tuple{"qwen3-bias", qwen3_bias, 4, rl::model::LoraConfig{}},
        std::tuple{"llama3", llama, 5, rl::model::LoraConfig{}}, std::tuple{"llama3-bias", llama_bias, 6, rl::model::LoraConfig{}},
        std::tuple{"qwen3+lora", qwen3, 7, all_linear}, std::tuple{"gqa-tied+lora-qv", gqa, 8, qv}}) {
    const double bf16_tolerance = lora.enabled() ? kBf16MergedTolerance : kBf16Tolerance;
    for (const auto& [oracle_dtype, tolerance] :
         {std::pair{"float32", kTolerance}, std::pair{"float64", kTolerance},
          std::pair{"bfloat16", bf16_tolerance}}) {
      const double diff = Compare(name, config, seed, oracle_dtype, lora);
      if (!(diff >= 0 && diff <= tolerance)) {  // NaN fails too
        std::cerr << "FAIL " << name << " vs " << oracle_dtype << ": difference above " << tolerance
                  << "\n";
        ok = false;
      }
    }
  }
  return ok ? 0 : 1;
}
