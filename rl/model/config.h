// Qwen2Config and GenerationConfig: the Hugging Face config.json and generation_config.json of
// a Qwen2 / Qwen2.5 checkpoint, read, validated and written back. No LibTorch.
//
//   Qwen2Config config = Qwen2Config::FromJsonFile("Qwen2.5-0.5B-Instruct/config.json");
//   GenerationConfig gen = GenerationConfig::FromJsonFile(".../generation_config.json");
//   gen.eos_token_ids   // [151645, 151643]: eos_token_id may be an int or a list
//
// Both RoPE layouts are read: transformers v4 (top-level "rope_theta", "rope_scaling") and v5
// ("rope_parameters": {"rope_type", "rope_theta"}). What the forward pass does not implement is
// refused with a ModelError naming the file and field, never silently ignored: a model_type
// other than qwen2, rope scaling of any type but "default", sliding-window attention, an
// activation other than silu. Missing shape fields are errors; other fields take transformers'
// Qwen2 defaults. Plain values: copy and share freely.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "rl/model/model_error.h"

namespace rl::model {

struct Qwen2Config {
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;  // default: num_attention_heads
  int64_t head_dim = 0;             // default: hidden_size / num_attention_heads
  int64_t max_position_embeddings = 32768;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  bool tie_word_embeddings = false;
  double initializer_range = 0.02;  // std of the normal init of a fresh (random) model
  std::optional<int64_t> bos_token_id;
  std::optional<int64_t> eos_token_id;

  // Reads and validates config.json. Throws ModelError naming `path` and the field.
  static Qwen2Config FromJsonFile(const std::string& path);
  // Same from a parsed object; `source` names it in error messages.
  static Qwen2Config FromJson(const nlohmann::json& j, const std::string& source);
  // A small model for tests and the from-scratch quickstart: hidden 64, 2 layers, 4 heads,
  // 2 KV heads, head_dim 16, intermediate 128, tied embeddings.
  static Qwen2Config Tiny(int64_t vocab_size = 256);
  // The shape of Qwen2.5-0.5B (tied head, 151,936 tokens), for benchmarks on random weights.
  static Qwen2Config Qwen2_5_0_5B();

  // Throws ModelError (prefixed by `source`) when the sizes are inconsistent.
  void Validate(const std::string& source) const;
  // The transformers v4 layout (top-level rope_theta), which v4, v5 and vLLM all read.
  // `torch_dtype` is written as given ("float32", "bfloat16").
  nlohmann::json ToJson(const std::string& torch_dtype = "float32") const;
  void WriteJsonFile(const std::string& path, const std::string& torch_dtype = "float32") const;
};

struct GenerationConfig {
  std::vector<int64_t> eos_token_ids;  // eos_token_id: an int or a list
  std::optional<int64_t> bos_token_id;
  std::optional<int64_t> pad_token_id;
  std::optional<bool> do_sample;
  std::optional<double> temperature;
  std::optional<double> top_p;
  std::optional<int64_t> top_k;
  std::optional<double> repetition_penalty;
  std::optional<int64_t> max_new_tokens;

  static GenerationConfig FromJsonFile(const std::string& path);
  static GenerationConfig FromJson(const nlohmann::json& j, const std::string& source);
  // Only the fields that are set; eos_token_id as an int when there is one id, else a list.
  nlohmann::json ToJson() const;
  void WriteJsonFile(const std::string& path) const;
};

}  // namespace rl::model
