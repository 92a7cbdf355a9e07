// LoRA adapters on the decoder (rl/model/decoder.h), in PEFT's layout: low-rank updates of the
// frozen base weights, trained in float32, saved and loaded as PEFT saves them, merged into full
// weights for transformers and vLLM.
//
//   AttachLora(*model, config.lora, seed);          // base frozen; A random, B zero: no change yet
//   std::vector<torch::Tensor> trainable = LoraParameters(*model);   // what the optimizer steps
//   { AdaptersDisabled off(*model); ... }           // the base model's forward pass (the KL reference)
//   SaveLoraAdapter(*model, lora, "out");           // adapter_config.json, adapter_model.safetensors
//   LoadLoraAdapter(*model, "out");                 // attaches and fills them (e.g. `--adapter`)
//   MergeLora(*model);                              // W += scale · B A; the adapters are gone
//
// A target Linear computes y = W x (+ b) + scale · B (A dropout(x)) with A [r, in] drawn as PEFT
// draws it (uniform ±1/sqrt(in), its kaiming_uniform with a = sqrt(5)) and B [out, r] zero,
// so a fresh adapter leaves the model's outputs unchanged. Dropout applies only while a gradient
// is recorded in training mode. The adapter runs in float32 under a float32 or bf16 base (x is
// cast to it, the update cast back), in float64 under a float64 one. The file's tensor names are PEFT's:
// "base_model.model.<module>.lora_A.weight" and "...lora_B.weight", <module> the Hugging Face
// name ("model.layers.0.self_attn.q_proj").
//
// Thread safety: forward passes may run concurrently (as for the decoder); AttachLora,
// MergeLora, LoadLoraAdapter and AdaptersDisabled change the model and need the caller to hold
// it alone. Errors: ModelError naming the file, tensor or field.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>

#include "rl/model/config.h"

namespace rl::model {

class DecoderImpl;

// One target module's adapter; LinearImpl::forward adds Update(x) to its output when enabled.
struct LoraAdapter {
  at::Tensor A;  // [r, in], requires grad
  at::Tensor B;  // [out, r], requires grad
  double scale = 1;
  double dropout = 0;
  bool enabled = true;
  // scale · B A dropout(x), in x's dtype; dropout when `training` and a gradient is recorded.
  at::Tensor Update(const at::Tensor& x, bool training) const;
};

// Attaches an adapter to every target module (config.Validate'd first) and freezes every base
// parameter. `seed` draws the A matrices. Throws ModelError when the model already has adapters.
void AttachLora(DecoderImpl& model, const LoraConfig& config, uint64_t seed);

// True when adapters are attached.
bool HasLora(DecoderImpl& model);

// The adapters' tensors with their PEFT file names, in module order (A then B per module).
std::vector<std::pair<std::string, at::Tensor>> NamedLoraParameters(DecoderImpl& model);
// The same tensors without names: the trainable parameters of a LoRA run.
std::vector<at::Tensor> LoraParameters(DecoderImpl& model);

// While alive, the model computes the base alone (the adapters stay attached, untouched).
class AdaptersDisabled {
 public:
  explicit AdaptersDisabled(DecoderImpl& model);
  ~AdaptersDisabled();
  AdaptersDisabled(const AdaptersDisabled&) = delete;
  AdaptersDisabled& operator=(const AdaptersDisabled&) = delete;

 private:
  DecoderImpl& model_;
};

// Writes adapter_config.json (config's fields; `base_model_name_or_path` as given there) and
// adapter_model.safetensors (float32) into `dir`, created if needed.
void SaveLoraAdapter(DecoderImpl& model, const LoraConfig& config, const std::string& dir);

// Reads dir/adapter_config.json and dir/adapter_model.safetensors, attaches the adapters and
// copies their weights. Every expected tensor must be present with its shape, and no other
// tensor may be in the file (an adapter of another model). Returns the adapter's config.
LoraConfig LoadLoraAdapter(DecoderImpl& model, const std::string& dir);

// Writes source's merged weights, W + scale · B A, into target's modules that source adapts
// (computed in the adapters' dtype, rounded once into target's). target has source's
// architecture, e.g. a bf16 sampling copy whose other weights were copied from source.
void CopyMergedWeights(DecoderImpl& target, DecoderImpl& source);

// Merges the adapters into the base weights and removes them; every parameter is trainable
// again (an ordinary model).
void MergeLora(DecoderImpl& model);

}  // namespace rl::model
