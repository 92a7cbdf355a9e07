// LoadDecoder / SaveDecoder: Hugging Face checkpoint directories.
#include <cstdio>
#include <filesystem>
#include <regex>
#include <set>

#include <nlohmann/json.hpp>

#include <torch/types.h>

#include "common/json_file.h"
#include "rl/model/decoder.h"
#include "rl/model/safetensors.h"
#include "rl/model/tensor_io.h"

namespace rl::model {

Decoder LoadDecoder(const std::string& dir, torch::ScalarType dtype, torch::Device device) {
  namespace fs = std::filesystem;
  const DecoderConfig config = DecoderConfig::FromJsonFile((fs::path(dir) / "config.json").string());
  const SafetensorsCheckpoint ckpt = SafetensorsCheckpoint::OpenDirectory(dir);
  Decoder model(config, torch::TensorOptions().dtype(dtype).device(device), /*random_init=*/false);

  torch::NoGradGuard no_grad;
  std::set<std::string> used;
  for (auto& p : model->named_parameters()) {
    const TensorView& view = ckpt.Get(p.key());
    if (view.shape != p.value().sizes().vec()) {
      throw ModelError("'" + ckpt.FileOf(p.key()) + "', tensor '" + p.key() + "': shape " +
                       c10::str(c10::IntArrayRef(view.shape)) + " does not match config.json's " +
                       c10::str(p.value().sizes()));
    }
    p.value().copy_(ToTensor(view));
    used.insert(p.key());
  }
  for (const std::string& name : ckpt.names()) {
    if (used.count(name)) continue;
    // A tied checkpoint may still carry lm_head.weight (transformers ignores it); older
    // checkpoints carry the non-persistent RoPE inverse frequencies.
    if (name == "lm_head.weight" && config.tie_word_embeddings) continue;
    if (name.ends_with("rotary_emb.inv_freq")) continue;
    throw ModelError("'" + ckpt.FileOf(name) + "', tensor '" + name +
                     "': not a parameter of this model (is this checkpoint another architecture?)");
  }
  return model;
}

namespace {

// The groups of tensors, in order, of each shard: a new shard starts when the next tensor
// would take the current one past max_bytes (transformers' rule).
std::vector<std::vector<std::pair<std::string, torch::Tensor>>> Shards(
    const std::vector<std::pair<std::string, torch::Tensor>>& tensors, int64_t element_bytes, int64_t max_bytes) {
  std::vector<std::vector<std::pair<std::string, torch::Tensor>>> shards(1);
  int64_t size = 0;
  for (const auto& named : tensors) {
    const int64_t bytes = named.second.numel() * element_bytes;
    if (!shards.back().empty() && size + bytes > max_bytes) {
      shards.emplace_back();
      size = 0;
    }
    shards.back().push_back(named);
    size += bytes;
  }
  return shards;
}

// Weight files of an earlier save (single or sharded) that `kept` does not name.
void RemoveStaleWeights(const std::filesystem::path& dir, const std::set<std::string>& kept) {
  static const std::regex weights(R"(model(-[0-9]+-of-[0-9]+)?\.safetensors(\.index\.json)?)");
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (std::regex_match(name, weights) && !kept.count(name)) std::filesystem::remove(entry.path());
  }
}

}  // namespace

void SaveDecoder(Decoder& model, const std::string& dir, torch::ScalarType dtype, const GenerationConfig* generation,
                 int64_t max_shard_bytes) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw ModelError("SaveDecoder: cannot create '" + dir + "': " + ec.message());
  if (max_shard_bytes < 1) throw ModelError("SaveDecoder: max_shard_bytes must be positive");
  const std::string dtype_name = dtype == torch::kBFloat16 ? "bfloat16"
                                 : dtype == torch::kHalf   ? "float16"
                                                           : "float32";
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  for (const auto& p : model->named_parameters()) tensors.emplace_back(p.key(), p.value());
  const int64_t element_bytes = DtypeSize(ToDtype(dtype, "SaveDecoder"));
  const auto shards = Shards(tensors, element_bytes, max_shard_bytes);
  std::set<std::string> written;
  if (shards.size() == 1) {
    written.insert("model.safetensors");
    WriteTensorFile((fs::path(dir) / "model.safetensors").string(), tensors, dtype, {{"format", "pt"}});
  } else {
    nlohmann::json weight_map = nlohmann::json::object();
    int64_t total = 0;
    for (size_t i = 0; i < shards.size(); ++i) {
      char name_buffer[64];
      std::snprintf(name_buffer, sizeof name_buffer, "model-%05zu-of-%05zu.safetensors", i + 1, shards.size());
      const std::string name = name_buffer;
      for (const auto& [tensor_name, tensor] : shards[i]) {
        weight_map[tensor_name] = name;
        total += tensor.numel() * element_bytes;
      }
      WriteTensorFile((fs::path(dir) / name).string(), shards[i], dtype, {{"format", "pt"}});
      written.insert(name);
    }
    const nlohmann::json index = {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
    std::string error;
    if (!common::WriteJsonFile((fs::path(dir) / "model.safetensors.index.json").string(), index, &error)) {
      throw ModelError("SaveDecoder: " + error);
    }
    written.insert("model.safetensors.index.json");
  }
  RemoveStaleWeights(dir, written);
  model->config().WriteJsonFile((fs::path(dir) / "config.json").string(), dtype_name);
  if (generation != nullptr)
    generation->WriteJsonFile((fs::path(dir) / "generation_config.json").string());
}

}  // namespace rl::model
