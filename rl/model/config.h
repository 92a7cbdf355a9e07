// DecoderConfig and GenerationConfig: the Hugging Face config.json and generation_config.json of
// a Qwen2 / Qwen2.5, Qwen3 or Llama 3.x checkpoint, read, validated and written back. No LibTorch.
//
//   DecoderConfig config = DecoderConfig::FromJsonFile("Qwen3-0.6B/config.json");
//   config.qk_norm()    // true for qwen3
//   GenerationConfig gen = GenerationConfig::FromJsonFile(".../generation_config.json");
//   gen.eos_token_ids   // [151645, 151643]: eos_token_id may be an int or a list
//
// The three architectures are one decoder (rl/model/decoder.h) that differs in a few switches:
//   qwen2  q/k/v biases, no o_proj bias;
//   qwen3  attention_bias (q/k/v/o, default off), RMSNorm over head_dim on every query and key
//          head before RoPE (q_norm, k_norm), head_dim from the config;
//   llama  attention_bias (q/k/v/o) and mlp_bias (default off), rope_scaling of type "llama3".
// Both RoPE layouts are read: transformers v4 (top-level "rope_theta", "rope_scaling") and v5
// ("rope_parameters": {"rope_type", "rope_theta", ...}). What the forward pass does not implement
// is refused with a ModelError naming the file and field, never silently ignored: another
// model_type (MoE included), a rope type other than "default" and "llama3", sliding-window
// attention, an activation other than silu. Missing shape fields are errors; other fields take
// transformers' defaults for the architecture. Plain values: copy and share freely.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "rl/model/model_error.h"

namespace rl::model {

// The rotary embedding's frequencies: "default" as published, or "llama3" (Llama 3.1+): the
// frequencies whose wavelength exceeds original_max_position_embeddings / low_freq_factor are
// divided by `factor`, those below original / high_freq_factor kept, and those between
// interpolated smoothly.
struct RopeScaling {
  std::string type = "default";
  double factor = 1.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  int64_t original_max_position_embeddings = 8192;
};

struct DecoderConfig {
  std::string model_type = "qwen2";  // qwen2 | qwen3 | llama: the switches above, written back
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
  RopeScaling rope_scaling;
  bool attention_bias = false;  // qwen3, llama: biases on q/k/v/o_proj (qwen2 has q/k/v always)
  bool mlp_bias = false;        // llama: biases on gate/up/down_proj
  bool tie_word_embeddings = false;
  double initializer_range = 0.02;  // std of the normal init of a fresh (random) model
  std::optional<int64_t> bos_token_id;
  std::optional<int64_t> eos_token_id;

  // Reads and validates config.json. Throws ModelError naming `path` and the field.
  static DecoderConfig FromJsonFile(const std::string& path);
  // Same from a parsed object; `source` names it in error messages.
  static DecoderConfig FromJson(const nlohmann::json& j, const std::string& source);
  // A small model for tests and the from-scratch quickstart: hidden 64, 2 layers, 4 heads,
  // 2 KV heads, head_dim 16, intermediate 128, tied embeddings.
  static DecoderConfig Tiny(int64_t vocab_size = 256);
  // The shape of Qwen2.5-0.5B (tied head, 151,936 tokens), for benchmarks on random weights.
  static DecoderConfig Qwen2_5_0_5B();

  bool qkv_bias() const { return model_type == "qwen2" || attention_bias; }
  bool o_bias() const { return model_type != "qwen2" && attention_bias; }
  bool qk_norm() const { return model_type == "qwen3"; }

  // Throws ModelError (prefixed by `source`) when the sizes are inconsistent.
  void Validate(const std::string& source) const;
  // The transformers v4 layout (top-level rope_theta, rope_scaling), which v4, v5 and vLLM all
  // read, with the architecture's name and switches.
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

// A LoRA adapter's settings, as PEFT's LoraConfig (adapter_config.json) names them: every
// target module W (a Linear of the decoder layers) computes W x + scale · B A x with A [r, in],
// B [out, r] and scale = alpha / r (alpha / sqrt(r) with use_rslora); dropout applies to x on
// the adapter's path while training. r == 0 means no adapter (the trainer's default).
// adapter_config.json fields PEFT has and we do not implement (DoRA, per-module rank or alpha
// patterns, bias training, modules_to_save, layer selection, fan_in_fan_out) are refused by
// name when set, never ignored.
struct LoraConfig {
  int64_t r = 0;
  double alpha = 32;
  double dropout = 0;
  std::vector<std::string> target_modules = {"q_proj", "k_proj", "v_proj", "o_proj",
                                             "gate_proj", "up_proj", "down_proj"};
  bool use_rslora = false;
  std::string base_model_name_or_path;  // adapter_config.json: where the base weights are

  bool enabled() const { return r > 0; }
  double scale() const;
  // The module names a target may have (PEFT's "all-linear" on these models, less lm_head).
  static const std::vector<std::string>& KnownTargets();

  // Throws ModelError (prefixed by `source`) for r < 1, alpha <= 0, dropout outside [0, 1),
  // no targets, or a target that is not one of KnownTargets() (naming it and the valid ones).
  void Validate(const std::string& source) const;
  // adapter_config.json. target_modules may be a list or "all-linear".
  static LoraConfig FromJsonFile(const std::string& path);
  static LoraConfig FromJson(const nlohmann::json& j, const std::string& source);
  nlohmann::json ToJson() const;  // peft_type LORA, task_type CAUSAL_LM and the fields above
  void WriteJsonFile(const std::string& path) const;
};

}  // namespace rl::model
