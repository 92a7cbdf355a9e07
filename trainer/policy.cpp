#include "trainer/policy.h"

#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>

#include <nlohmann/json.hpp>
#include <torch/types.h>
#include <torch/utils.h>

#include "common/random.h"
#include "rl/model/lora.h"
#include "rl/text/chat_template.h"

namespace rl::trainer {
namespace {

// Beside tokenizer.json: the chat template and the special tokens' settings.
constexpr const char* kTokenizerFiles[] = {"tokenizer_config.json", "chat_template.jinja"};

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open");
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::unique_ptr<text::Tokenizer> ParseTokenizer(const std::string& json_text, const std::string& origin) {
  nlohmann::json j = nlohmann::json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) throw std::runtime_error(origin + ": not valid JSON");
  std::string error;
  std::unique_ptr<text::Tokenizer> tokenizer = text::Tokenizer::FromJson(j, &error);
  if (!tokenizer) throw std::runtime_error(origin + ": " + error);
  return tokenizer;
}

// The configured EOS token first, then the generation config's own ids (deduplicated).
model::GenerationConfig WithEos(model::GenerationConfig generation, const text::Tokenizer& tokenizer,
                                const std::string& eos_token) {
  std::optional<int32_t> eos = tokenizer.TokenToId(eos_token);
  if (!eos) throw std::runtime_error("tokenizer.eos_token '" + eos_token + "' is not a token of the tokenizer");
  std::vector<int64_t> ids = {*eos};
  for (int64_t id : generation.eos_token_ids) {
    if (id != *eos) ids.push_back(id);
  }
  generation.eos_token_ids = ids;
  return generation;
}

// The chat template of tokenizer.prompt_format; Qwen2.5's for conversations when it is plain.
text::ChatTemplate TemplateOf(PromptFormat format) {
  switch (format) {
    case PromptFormat::kQwen3: return text::ChatTemplate::kQwen3;
    case PromptFormat::kLlama3: return text::ChatTemplate::kLlama3;
    case PromptFormat::kLlama32: return text::ChatTemplate::kLlama32;
    case PromptFormat::kAuto:
      throw std::logic_error("tokenizer.prompt_format auto is resolved against the checkpoint first (ResolveTokenizer)");
    case PromptFormat::kPlain:
    case PromptFormat::kChatMl: break;
  }
  return text::ChatTemplate::kQwen25;
}

PromptFormat FormatOf(text::ChatTemplate kind) {
  switch (kind) {
    case text::ChatTemplate::kQwen25: return PromptFormat::kChatMl;
    case text::ChatTemplate::kQwen3: return PromptFormat::kQwen3;
    case text::ChatTemplate::kLlama3: return PromptFormat::kLlama3;
    case text::ChatTemplate::kLlama32: return PromptFormat::kLlama32;
  }
  return PromptFormat::kPlain;
}

// tokenizer_config.json's eos_token (a string, or an AddedToken object's content); empty if none.
std::string CheckpointEosToken(const std::string& dir) {
  const std::filesystem::path path = std::filesystem::path(dir) / "tokenizer_config.json";
  if (dir.empty() || !std::filesystem::exists(path)) return "";
  const nlohmann::json config = nlohmann::json::parse(ReadFile(path.string()), nullptr, /*allow_exceptions=*/false);
  if (!config.is_object()) throw std::runtime_error(path.string() + ": not a JSON object");
  if (!config.contains("eos_token")) return "";
  const nlohmann::json& eos = config["eos_token"];
  if (eos.is_string()) return eos.get<std::string>();
  if (eos.is_object() && eos.contains("content") && eos["content"].is_string()) return eos["content"].get<std::string>();
  return "";
}

std::vector<std::string> SpecialTokens(const TokenizerSection& t) {
  std::vector<std::string> special = {t.eos_token};
  if (t.prompt_format != PromptFormat::kPlain) {
    for (std::string_view token : text::ChatTemplateMarkers(TemplateOf(t.prompt_format))) {
      if (token != t.eos_token) special.emplace_back(token);
    }
  }
  return special;
}

}  // namespace

TokenizerSection ResolveTokenizer(TokenizerSection tokenizer, const std::string& checkpoint_dir) {
  if (tokenizer.prompt_format == PromptFormat::kAuto) {
    tokenizer.prompt_format = PromptFormat::kPlain;
    if (!checkpoint_dir.empty() && text::CheckpointHasChatTemplate(checkpoint_dir)) {
      std::string error;
      const std::optional<text::ChatTemplate> kind = text::ChatTemplateOfCheckpoint(checkpoint_dir, &error);
      if (!kind) throw std::runtime_error("tokenizer.prompt_format auto: " + error);
      tokenizer.prompt_format = FormatOf(*kind);
    }
  }
  if (tokenizer.eos_token.empty()) {
    if (tokenizer.prompt_format != PromptFormat::kPlain) {
      tokenizer.eos_token = text::ChatTemplateEndOfTurn(TemplateOf(tokenizer.prompt_format));
    } else {
      tokenizer.eos_token = CheckpointEosToken(checkpoint_dir);
      if (tokenizer.eos_token.empty()) tokenizer.eos_token = "<|endoftext|>";
    }
  }
  return tokenizer;
}

std::string TokenizerDir(const TrainConfig& config) {
  if (config.tokenizer.path.empty()) return config.model.path;
  const std::filesystem::path dir = std::filesystem::path(config.tokenizer.path).parent_path();
  return dir.empty() ? "." : dir.string();
}

std::string RenderPrompt(const TokenizerSection& tokenizer, const data::Example& example) {
  if (example.messages.empty() && tokenizer.prompt_format == PromptFormat::kPlain) return example.prompt + "\n";
  std::vector<text::ChatMessage> messages;
  const bool has_system = !example.messages.empty() && example.messages.front().role == "system";
  if (!has_system && !tokenizer.system_prompt.empty()) messages.push_back({"system", tokenizer.system_prompt});
  if (example.messages.empty()) messages.push_back({"user", example.prompt});
  messages.insert(messages.end(), example.messages.begin(), example.messages.end());
  text::ChatOptions options;
  options.enable_thinking = tokenizer.enable_thinking;
  return text::RenderChat(TemplateOf(tokenizer.prompt_format), messages, options);
}

Policy MakeTinyPolicy(const TrainConfig& config, std::span<const std::string> corpus) {
  const TokenizerSection tokenizer = ResolveTokenizer(config.tokenizer, "");
  const std::vector<std::string> special = SpecialTokens(tokenizer);
  nlohmann::json tokenizer_json = text::TrainByteLevelBpe(
      corpus, static_cast<int32_t>(config.tokenizer.train_vocab_size), special);
  Policy policy;
  policy.tokenizer_json = tokenizer_json.dump();
  policy.tokenizer = ParseTokenizer(policy.tokenizer_json, "trained tokenizer");

  const TinyModelSection& tiny = config.model.tiny;
  model::DecoderConfig shape;
  shape.vocab_size = policy.tokenizer->vocab_size();
  shape.hidden_size = tiny.hidden_size;
  shape.intermediate_size = tiny.intermediate_size;
  shape.num_hidden_layers = tiny.num_hidden_layers;
  shape.num_attention_heads = tiny.num_attention_heads;
  shape.num_key_value_heads = tiny.num_key_value_heads;
  shape.head_dim = tiny.hidden_size / tiny.num_attention_heads;
  shape.max_position_embeddings = tiny.max_position_embeddings;
  shape.rms_norm_eps = tiny.rms_norm_eps;
  shape.rope_theta = tiny.rope_theta;
  shape.tie_word_embeddings = tiny.tie_word_embeddings;
  shape.initializer_range = tiny.init_std;
  shape.Validate(config.origin + ": model.tiny");
  torch::manual_seed(common::DeriveSeed(static_cast<uint64_t>(config.run.seed), "init"));
  policy.model = model::Decoder(shape, torch::TensorOptions().dtype(torch::kFloat32), /*random_init=*/true);
  policy.generation = WithEos({}, *policy.tokenizer, tokenizer.eos_token);
  return policy;
}

Policy LoadPolicy(const std::string& dir, const std::string& tokenizer_file, const TrainConfig& config) {
  namespace fs = std::filesystem;
  Policy policy;
  const std::string tokenizer_path =
      tokenizer_file.empty() ? (fs::path(dir) / "tokenizer.json").string() : tokenizer_file;
  policy.tokenizer_json = ReadFile(tokenizer_path);
  policy.tokenizer = ParseTokenizer(policy.tokenizer_json, tokenizer_path);
  for (const char* name : kTokenizerFiles) {
    const fs::path path = fs::path(tokenizer_path).parent_path() / name;
    if (fs::exists(path)) policy.tokenizer_files[name] = ReadFile(path.string());
  }
  policy.model = model::LoadDecoder(dir, torch::kFloat32, torch::kCPU);
  model::GenerationConfig generation;
  const fs::path generation_path = fs::path(dir) / "generation_config.json";
  if (fs::exists(generation_path)) generation = model::GenerationConfig::FromJsonFile(generation_path.string());
  const fs::path tokenizer_dir = fs::path(tokenizer_path).parent_path();
  const std::string eos = ResolveTokenizer(config.tokenizer, tokenizer_dir.empty() ? "." : tokenizer_dir.string()).eos_token;
  policy.generation = WithEos(generation, *policy.tokenizer, eos);
  return policy;
}

void SavePolicy(Policy& policy, const std::string& dir, int64_t max_shard_bytes) {
  std::filesystem::create_directories(dir);
  if (policy.lora.enabled()) {
    model::SaveLoraAdapter(*policy.model, policy.lora, dir);
    policy.generation.WriteJsonFile((std::filesystem::path(dir) / "generation_config.json").string());
  } else {
    model::SaveDecoder(policy.model, dir, torch::kFloat32, &policy.generation, max_shard_bytes);
  }
  std::map<std::string, std::string> files = policy.tokenizer_files;
  files["tokenizer.json"] = policy.tokenizer_json;
  for (const auto& [name, text] : files) {
    std::ofstream out(std::filesystem::path(dir) / name, std::ios::binary);
    out << text;
    if (!out.flush()) throw std::runtime_error(dir + "/" + name + ": cannot write");
  }
}

void AttachAdapters(Policy& policy, model::LoraConfig lora, const std::string& base_dir, uint64_t seed) {
  lora.base_model_name_or_path = std::filesystem::absolute(base_dir).lexically_normal().string();
  model::AttachLora(*policy.model, lora, seed);
  policy.lora = std::move(lora);
}

bool IsAdapterDir(const std::string& dir) {
  return std::filesystem::exists(std::filesystem::path(dir) / "adapter_config.json");
}

Policy LoadAdapterPolicy(const std::string& dir, const TrainConfig& config) {
  const model::LoraConfig lora =
      model::LoraConfig::FromJsonFile((std::filesystem::path(dir) / "adapter_config.json").string());
  if (lora.base_model_name_or_path.empty()) {
    throw model::ModelError("'" + dir + "/adapter_config.json', field \"base_model_name_or_path\": is required");
  }
  Policy policy = LoadPolicy(lora.base_model_name_or_path, (std::filesystem::path(dir) / "tokenizer.json").string(), config);
  policy.lora = model::LoadLoraAdapter(*policy.model, dir);
  return policy;
}

BaseKeptInBf16::BaseKeptInBf16(Policy& policy, bool on) {
  if (!on || !policy.lora.enabled()) return;
  model_ = policy.model.get();
  model_->StoreLinearsIn(torch::kBFloat16);
}

BaseKeptInBf16::~BaseKeptInBf16() {
  if (model_ != nullptr) model_->StoreLinearsIn(model_->dtype());
}

std::vector<torch::Tensor> TrainableParameters(Policy& policy) {
  return policy.lora.enabled() ? model::LoraParameters(*policy.model) : policy.model->parameters();
}

void MergeAdapters(Policy& policy) {
  model::MergeLora(*policy.model);
  policy.lora = model::LoraConfig();
}

}  // namespace rl::trainer
