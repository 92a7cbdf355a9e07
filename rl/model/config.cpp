// Reading, validating and writing config.json / generation_config.json.
#include "rl/model/config.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "common/json_file.h"

namespace rl::model {
namespace {

[[noreturn]] void Fail(const std::string& source, const std::string& field,
                       const std::string& what) {
  throw ModelError("'" + source + "', field \"" + field + "\": " + what);
}

void WriteJson(const std::string& path, const nlohmann::json& j) {
  std::string error;
  if (!common::WriteJsonFile(path, j, &error)) throw ModelError(error);
}

bool Present(const nlohmann::json& j, const char* key) {
  return j.contains(key) && !j[key].is_null();
}

int64_t GetInt(const nlohmann::json& j, const std::string& source, const char* key,
               std::optional<int64_t> fallback) {
  if (!Present(j, key)) {
    if (!fallback) Fail(source, key, "is required");
    return *fallback;
  }
  if (!j[key].is_number_integer()) Fail(source, key, "must be an integer, got " + j[key].dump());
  return j[key].get<int64_t>();
}

double GetNumber(const nlohmann::json& j, const std::string& source, const char* key,
                 double fallback) {
  if (!Present(j, key)) return fallback;
  if (!j[key].is_number()) Fail(source, key, "must be a number, got " + j[key].dump());
  return j[key].get<double>();
}

bool GetBool(const nlohmann::json& j, const std::string& source, const char* key, bool fallback) {
  if (!Present(j, key)) return fallback;
  if (!j[key].is_boolean()) Fail(source, key, "must be true or false, got " + j[key].dump());
  return j[key].get<bool>();
}

std::optional<int64_t> GetOptionalInt(const nlohmann::json& j, const std::string& source,
                                      const char* key) {
  if (!Present(j, key)) return std::nullopt;
  return GetInt(j, source, key, std::nullopt);
}

double GetPositive(const nlohmann::json& j, const std::string& source, const std::string& field,
                   const char* key) {
  if (!Present(j, key) || !j[key].is_number() || !(j[key].get<double>() > 0)) {
    Fail(source, field + "." + key, "must be a positive number for rope type \"llama3\"");
  }
  return j[key].get<double>();
}

// A RoPE settings object (v4 "rope_scaling" or v5 "rope_parameters"): the default (unscaled)
// rotary embedding, or Llama 3's frequency scaling.
RopeScaling ReadRopeScaling(const nlohmann::json& rope, const std::string& source, const char* field) {
  if (!rope.is_object()) Fail(source, field, "must be an object or null");
  RopeScaling r;
  for (const char* key : {"type", "rope_type"}) {  // v4 wrote "type"; later "rope_type"
    if (!Present(rope, key)) continue;
    if (!rope[key].is_string()) Fail(source, std::string(field) + "." + key, "must be a string");
    r.type = rope[key].get<std::string>();
  }
  if (r.type == "default") return r;
  if (r.type != "llama3") {
    Fail(source, field, "rope type \"" + r.type + "\" is not implemented (supported: \"default\", \"llama3\")");
  }
  r.factor = GetPositive(rope, source, field, "factor");
  r.low_freq_factor = GetPositive(rope, source, field, "low_freq_factor");
  r.high_freq_factor = GetPositive(rope, source, field, "high_freq_factor");
  r.original_max_position_embeddings =
      static_cast<int64_t>(GetPositive(rope, source, field, "original_max_position_embeddings"));
  return r;
}

bool Supported(const nlohmann::json& model_type) {
  return model_type == "qwen2" || model_type == "qwen3" || model_type == "llama";
}

// What the forward pass does not implement, refused by field.
void RefuseUnsupported(const nlohmann::json& j, const std::string& source) {
  if (!Present(j, "model_type")) Fail(source, "model_type", "is required (qwen2, qwen3 or llama)");
  if (!Supported(j["model_type"])) {
    Fail(source, "model_type", j["model_type"].dump() + " is not supported (expected qwen2, qwen3 or llama)");
  }
  if (Present(j, "hidden_act") && j["hidden_act"] != "silu") {
    Fail(source, "hidden_act", j["hidden_act"].dump() + " is not supported (expected \"silu\")");
  }
  if (GetBool(j, source, "use_sliding_window", false)) {
    Fail(source, "use_sliding_window", "sliding-window attention is not implemented");
  }
  if (Present(j, "layer_types")) {  // transformers v5 spells sliding layers out per layer
    for (const auto& t : j["layer_types"]) {
      if (t != "full_attention") {
        Fail(source, "layer_types", "layer type " + t.dump() + " is not implemented");
      }
    }
  }
  if (GetNumber(j, source, "attention_dropout", 0.0) != 0.0) {
    Fail(source, "attention_dropout", "must be 0 (dropout in attention is not implemented)");
  }
}

}  // namespace

DecoderConfig DecoderConfig::FromJsonFile(const std::string& path) {
  return FromJson(ReadModelJson(path), path);
}

DecoderConfig DecoderConfig::FromJson(const nlohmann::json& j, const std::string& source) {
  if (!j.is_object()) throw ModelError("'" + source + "': expected a JSON object");
  RefuseUnsupported(j, source);
  DecoderConfig c;
  c.model_type = j["model_type"].get<std::string>();
  c.vocab_size = GetInt(j, source, "vocab_size", std::nullopt);
  c.hidden_size = GetInt(j, source, "hidden_size", std::nullopt);
  c.intermediate_size = GetInt(j, source, "intermediate_size", std::nullopt);
  c.num_hidden_layers = GetInt(j, source, "num_hidden_layers", std::nullopt);
  c.num_attention_heads = GetInt(j, source, "num_attention_heads", std::nullopt);
  c.num_key_value_heads = GetInt(j, source, "num_key_value_heads", c.num_attention_heads);
  c.head_dim = GetInt(j, source, "head_dim",
                      c.num_attention_heads > 0 ? c.hidden_size / c.num_attention_heads : 0);
  c.max_position_embeddings = GetInt(j, source, "max_position_embeddings", 32768);
  c.rms_norm_eps = GetNumber(j, source, "rms_norm_eps", 1e-6);
  c.tie_word_embeddings = GetBool(j, source, "tie_word_embeddings", false);
  c.initializer_range = GetNumber(j, source, "initializer_range", 0.02);
  if (c.model_type != "qwen2") c.attention_bias = GetBool(j, source, "attention_bias", false);
  if (c.model_type == "llama") c.mlp_bias = GetBool(j, source, "mlp_bias", false);
  c.bos_token_id = GetOptionalInt(j, source, "bos_token_id");
  c.eos_token_id = j.contains("eos_token_id") && j["eos_token_id"].is_array()
                       ? std::nullopt  // a list belongs in generation_config.json
                       : GetOptionalInt(j, source, "eos_token_id");

  // RoPE: v4 top-level rope_theta / rope_scaling; v5 rope_parameters.
  c.rope_theta = GetNumber(j, source, "rope_theta", 10000.0);
  if (Present(j, "rope_scaling")) c.rope_scaling = ReadRopeScaling(j["rope_scaling"], source, "rope_scaling");
  if (Present(j, "rope_parameters")) {
    const auto& rope = j["rope_parameters"];
    c.rope_scaling = ReadRopeScaling(rope, source, "rope_parameters");
    if (Present(rope, "rope_theta")) {
      if (!rope["rope_theta"].is_number()) {
        Fail(source, "rope_parameters.rope_theta", "must be a number");
      }
      c.rope_theta = rope["rope_theta"].get<double>();
    }
  }
  c.Validate(source);
  return c;
}

DecoderConfig DecoderConfig::Qwen2_5_0_5B() {
  DecoderConfig c;
  c.vocab_size = 151936;
  c.hidden_size = 896;
  c.intermediate_size = 4864;
  c.num_hidden_layers = 24;
  c.num_attention_heads = 14;
  c.num_key_value_heads = 2;
  c.head_dim = 64;
  c.max_position_embeddings = 32768;
  c.rope_theta = 1e6;
  c.tie_word_embeddings = true;
  return c;
}

DecoderConfig DecoderConfig::Tiny(int64_t vocab_size) {
  DecoderConfig c;
  c.vocab_size = vocab_size;
  c.hidden_size = 64;
  c.intermediate_size = 128;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = 16;
  c.max_position_embeddings = 2048;
  c.rms_norm_eps = 1e-6;
  c.rope_theta = 10000.0;
  c.tie_word_embeddings = true;
  return c;
}

void DecoderConfig::Validate(const std::string& source) const {
  auto positive = [&](const char* field, int64_t v) {
    if (v <= 0) Fail(source, field, "must be positive, got " + std::to_string(v));
  };
  positive("vocab_size", vocab_size);
  positive("hidden_size", hidden_size);
  positive("intermediate_size", intermediate_size);
  positive("num_hidden_layers", num_hidden_layers);
  positive("num_attention_heads", num_attention_heads);
  positive("num_key_value_heads", num_key_value_heads);
  positive("head_dim", head_dim);
  positive("max_position_embeddings", max_position_embeddings);
  if (num_attention_heads % num_key_value_heads != 0) {
    Fail(source, "num_key_value_heads",
         std::to_string(num_key_value_heads) + " does not divide num_attention_heads " +
             std::to_string(num_attention_heads));
  }
  if (head_dim % 2 != 0) Fail(source, "head_dim", "must be even for rotary embeddings");
  if (!(rms_norm_eps > 0)) Fail(source, "rms_norm_eps", "must be positive");
  if (!(rope_theta > 0)) Fail(source, "rope_theta", "must be positive");
  if (!Supported(model_type)) Fail(source, "model_type", "\"" + model_type + "\" is not supported");
  if (model_type == "qwen2" && attention_bias) Fail(source, "attention_bias", "qwen2's biases are fixed (q/k/v)");
  if (model_type != "llama" && mlp_bias) Fail(source, "mlp_bias", "only llama has MLP biases");
  if (rope_scaling.type == "llama3" && !(rope_scaling.high_freq_factor > rope_scaling.low_freq_factor)) {
    Fail(source, "rope_scaling.high_freq_factor", "must exceed low_freq_factor");
  }
}

nlohmann::json DecoderConfig::ToJson(const std::string& torch_dtype) const {
  const char* architecture = model_type == "qwen3"   ? "Qwen3ForCausalLM"
                             : model_type == "llama" ? "LlamaForCausalLM"
                                                     : "Qwen2ForCausalLM";
  nlohmann::json j = {
      {"architectures", {architecture}},
      {"model_type", model_type},
      {"vocab_size", vocab_size},
      {"hidden_size", hidden_size},
      {"intermediate_size", intermediate_size},
      {"num_hidden_layers", num_hidden_layers},
      {"num_attention_heads", num_attention_heads},
      {"num_key_value_heads", num_key_value_heads},
      {"head_dim", head_dim},
      {"max_position_embeddings", max_position_embeddings},
      {"rms_norm_eps", rms_norm_eps},
      {"rope_theta", rope_theta},
      {"rope_scaling", nullptr},  // below for llama3
      {"tie_word_embeddings", tie_word_embeddings},
      {"hidden_act", "silu"},
      {"attention_dropout", 0.0},
      {"use_sliding_window", false},
      {"initializer_range", initializer_range},
      {"use_cache", true},
      {"torch_dtype", torch_dtype},
  };
  if (model_type != "qwen2") j["attention_bias"] = attention_bias;
  if (model_type == "llama") j["mlp_bias"] = mlp_bias;
  if (model_type == "llama") j.erase("use_sliding_window");
  if (rope_scaling.type == "llama3") {
    j["rope_scaling"] = {{"rope_type", "llama3"},
                         {"factor", rope_scaling.factor},
                         {"low_freq_factor", rope_scaling.low_freq_factor},
                         {"high_freq_factor", rope_scaling.high_freq_factor},
                         {"original_max_position_embeddings", rope_scaling.original_max_position_embeddings}};
  }
  if (bos_token_id) j["bos_token_id"] = *bos_token_id;
  if (eos_token_id) j["eos_token_id"] = *eos_token_id;
  return j;
}

void DecoderConfig::WriteJsonFile(const std::string& path, const std::string& torch_dtype) const {
  WriteJson(path, ToJson(torch_dtype));
}

GenerationConfig GenerationConfig::FromJsonFile(const std::string& path) {
  return FromJson(ReadModelJson(path), path);
}

GenerationConfig GenerationConfig::FromJson(const nlohmann::json& j, const std::string& source) {
  if (!j.is_object()) throw ModelError("'" + source + "': expected a JSON object");
  GenerationConfig g;
  if (Present(j, "eos_token_id")) {
    const auto& eos = j["eos_token_id"];
    if (eos.is_number_integer()) {
      g.eos_token_ids.push_back(eos.get<int64_t>());
    } else if (eos.is_array()) {
      for (const auto& id : eos) {
        if (!id.is_number_integer()) Fail(source, "eos_token_id", "list must hold integers");
        g.eos_token_ids.push_back(id.get<int64_t>());
      }
    } else {
      Fail(source, "eos_token_id", "must be an integer or a list of integers");
    }
  }
  g.bos_token_id = GetOptionalInt(j, source, "bos_token_id");
  g.pad_token_id = GetOptionalInt(j, source, "pad_token_id");
  if (Present(j, "do_sample")) g.do_sample = GetBool(j, source, "do_sample", false);
  if (Present(j, "temperature")) g.temperature = GetNumber(j, source, "temperature", 1.0);
  if (Present(j, "top_p")) g.top_p = GetNumber(j, source, "top_p", 1.0);
  g.top_k = GetOptionalInt(j, source, "top_k");
  if (Present(j, "repetition_penalty")) {
    g.repetition_penalty = GetNumber(j, source, "repetition_penalty", 1.0);
  }
  g.max_new_tokens = GetOptionalInt(j, source, "max_new_tokens");
  return g;
}

nlohmann::json GenerationConfig::ToJson() const {
  nlohmann::json j = nlohmann::json::object();
  if (eos_token_ids.size() == 1) j["eos_token_id"] = eos_token_ids[0];
  if (eos_token_ids.size() > 1) j["eos_token_id"] = eos_token_ids;
  if (bos_token_id) j["bos_token_id"] = *bos_token_id;
  if (pad_token_id) j["pad_token_id"] = *pad_token_id;
  if (do_sample) j["do_sample"] = *do_sample;
  if (temperature) j["temperature"] = *temperature;
  if (top_p) j["top_p"] = *top_p;
  if (top_k) j["top_k"] = *top_k;
  if (repetition_penalty) j["repetition_penalty"] = *repetition_penalty;
  if (max_new_tokens) j["max_new_tokens"] = *max_new_tokens;
  return j;
}

void GenerationConfig::WriteJsonFile(const std::string& path) const { WriteJson(path, ToJson()); }

// ---------------------------------------------------------------------------------------------
// LoraConfig

double LoraConfig::scale() const {
  return use_rslora ? alpha / std::sqrt(static_cast<double>(r)) : alpha / static_cast<double>(r);
}

const std::vector<std::string>& LoraConfig::KnownTargets() {
  static const std::vector<std::string> known = {"q_proj",    "k_proj",  "v_proj",   "o_proj",
                                                 "gate_proj", "up_proj", "down_proj"};
  return known;
}

void LoraConfig::Validate(const std::string& source) const {
  auto fail = [&](const std::string& field, const std::string& what) { Fail(source, field, what); };
  if (r < 1) fail("r", "must be at least 1, got " + std::to_string(r));
  if (!(alpha > 0)) fail("lora_alpha", "must be positive");
  if (!(dropout >= 0 && dropout < 1)) fail("lora_dropout", "must be in [0, 1)");
  if (target_modules.empty()) fail("target_modules", "names no module");
  const std::vector<std::string>& known = KnownTargets();
  std::string valid;
  for (const std::string& k : known) valid += (valid.empty() ? "" : ", ") + k;
  for (size_t i = 0; i < target_modules.size(); ++i) {
    const std::string& t = target_modules[i];
    if (std::find(known.begin(), known.end(), t) == known.end()) {
      fail("target_modules", "'" + t + "' is not a linear module of these models (valid: " + valid + ")");
    }
    if (std::find(target_modules.begin(), target_modules.begin() + static_cast<std::ptrdiff_t>(i), t) !=
        target_modules.begin() + static_cast<std::ptrdiff_t>(i)) {
      fail("target_modules", "'" + t + "' is named twice");
    }
  }
}

LoraConfig LoraConfig::FromJsonFile(const std::string& path) { return FromJson(ReadModelJson(path), path); }

LoraConfig LoraConfig::FromJson(const nlohmann::json& j, const std::string& source) {
  if (!j.is_object()) throw ModelError("'" + source + "': expected a JSON object");
  if (!Present(j, "peft_type") || !j["peft_type"].is_string() || j["peft_type"].get<std::string>() != "LORA") {
    Fail(source, "peft_type", "must be \"LORA\" (only LoRA adapters are supported)");
  }
  // PEFT features that change the computation: refused when set rather than silently dropped.
  auto refuse_if = [&](const char* key, bool set, const char* what) {
    if (set) Fail(source, key, std::string(what) + " is not supported");
  };
  auto non_empty = [&](const char* key) {
    return Present(j, key) && !((j[key].is_object() || j[key].is_array()) && j[key].empty());
  };
  refuse_if("use_dora", GetBool(j, source, "use_dora", false), "DoRA");
  refuse_if("fan_in_fan_out", GetBool(j, source, "fan_in_fan_out", false), "fan_in_fan_out (Conv1D weights)");
  refuse_if("bias", Present(j, "bias") && j["bias"] != "none", "training biases (bias other than \"none\")");
  refuse_if("rank_pattern", non_empty("rank_pattern"), "a per-module rank");
  refuse_if("alpha_pattern", non_empty("alpha_pattern"), "a per-module alpha");
  refuse_if("modules_to_save", non_empty("modules_to_save"), "modules_to_save");
  refuse_if("layers_to_transform", non_empty("layers_to_transform"), "layers_to_transform");
  refuse_if("lora_bias", GetBool(j, source, "lora_bias", false), "lora_bias");
  LoraConfig c;
  c.r = GetInt(j, source, "r", std::nullopt);
  c.alpha = GetNumber(j, source, "lora_alpha", 8.0);  // PEFT's default
  c.dropout = GetNumber(j, source, "lora_dropout", 0.0);
  c.use_rslora = GetBool(j, source, "use_rslora", false);
  if (Present(j, "base_model_name_or_path")) {
    if (!j["base_model_name_or_path"].is_string()) Fail(source, "base_model_name_or_path", "must be a string");
    c.base_model_name_or_path = j["base_model_name_or_path"].get<std::string>();
  }
  if (!Present(j, "target_modules")) Fail(source, "target_modules", "is required");
  const nlohmann::json& targets = j["target_modules"];
  if (targets.is_string() && targets.get<std::string>() == "all-linear") {
    c.target_modules = KnownTargets();
  } else if (targets.is_array()) {
    c.target_modules.clear();
    for (const auto& t : targets) {
      if (!t.is_string()) Fail(source, "target_modules", "must hold module names, got " + t.dump());
      c.target_modules.push_back(t.get<std::string>());
    }
  } else {
    Fail(source, "target_modules", "must be a list of module names or \"all-linear\", got " + targets.dump());
  }
  c.Validate(source);
  return c;
}

nlohmann::json LoraConfig::ToJson() const {
  return {{"peft_type", "LORA"},
          {"task_type", "CAUSAL_LM"},
          {"base_model_name_or_path", base_model_name_or_path},
          {"r", r},
          {"lora_alpha", alpha},
          {"lora_dropout", dropout},
          {"target_modules", target_modules},
          {"use_rslora", use_rslora},
          {"use_dora", false},
          {"bias", "none"},
          {"fan_in_fan_out", false},
          {"init_lora_weights", true},
          {"inference_mode", true},
          {"modules_to_save", nullptr}};
}

void LoraConfig::WriteJsonFile(const std::string& path) const { WriteJson(path, ToJson()); }

nlohmann::json ReadModelJson(const std::string& path) {
  std::string error;
  std::optional<nlohmann::json> j = common::ReadJsonFile(path, &error);
  if (!j) throw ModelError(error);
  return std::move(*j);
}

}  // namespace rl::model
