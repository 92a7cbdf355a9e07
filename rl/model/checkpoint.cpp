// LoadDecoder / SaveDecoder: Hugging Face checkpoint directories.
#include <filesystem>
#include <set>

#include <torch/types.h>

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

void SaveDecoder(Decoder& model, const std::string& dir, torch::ScalarType dtype,
               const GenerationConfig* generation) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw ModelError("SaveDecoder: cannot create '" + dir + "': " + ec.message());
  const std::string dtype_name = dtype == torch::kBFloat16 ? "bfloat16"
                                 : dtype == torch::kHalf   ? "float16"
                                                           : "float32";
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  for (const auto& p : model->named_parameters()) tensors.emplace_back(p.key(), p.value());
  WriteTensorFile((fs::path(dir) / "model.safetensors").string(), tensors, dtype,
                  {{"format", "pt"}});
  model->config().WriteJsonFile((fs::path(dir) / "config.json").string(), dtype_name);
  if (generation != nullptr)
    generation->WriteJsonFile((fs::path(dir) / "generation_config.json").string());
}

}  // namespace rl::model
