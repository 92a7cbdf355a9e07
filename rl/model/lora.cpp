// LoRA adapters: attaching, the update in the forward pass, PEFT's files, merging.
#include "rl/model/lora.h"

#include <filesystem>
#include <set>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/types.h>

#include "rl/model/decoder.h"
#include "rl/model/safetensors.h"
#include "rl/model/tensor_io.h"

namespace rl::model {
namespace {

namespace fs = std::filesystem;

constexpr const char* kConfigFile = "adapter_config.json";
constexpr const char* kWeightsFile = "adapter_model.safetensors";

// "model.layers.0.self_attn.q_proj" -> "q_proj".
std::string LastComponent(const std::string& name) {
  const size_t dot = name.rfind('.');
  return dot == std::string::npos ? name : name.substr(dot + 1);
}

// The decoder's Linear modules that `targets` name, with their Hugging Face names, in module
// order. lm_head is never a target (PEFT's all-linear leaves it out too).
std::vector<std::pair<std::string, LinearImpl*>> TargetLinears(DecoderImpl& model,
                                                              const std::vector<std::string>& targets) {
  std::vector<std::pair<std::string, LinearImpl*>> found;
  for (const auto& item : model.named_modules("", /*include_self=*/false)) {
    auto* linear = item.value()->as<LinearImpl>();
    if (linear == nullptr || item.key() == "lm_head") continue;
    const std::string last = LastComponent(item.key());
    if (std::find(targets.begin(), targets.end(), last) != targets.end()) found.emplace_back(item.key(), linear);
  }
  return found;
}

// Every Linear that holds an adapter.
std::vector<std::pair<std::string, LinearImpl*>> AdaptedLinears(DecoderImpl& model) {
  std::vector<std::pair<std::string, LinearImpl*>> found;
  for (const auto& item : model.named_modules("", /*include_self=*/false)) {
    auto* linear = item.value()->as<LinearImpl>();
    if (linear != nullptr && linear->lora) found.emplace_back(item.key(), linear);
  }
  return found;
}

std::string FileName(const std::string& module, char which) {
  return "base_model.model." + module + ".lora_" + which + ".weight";
}

// B A scale, [out, in] in the adapter's dtype.
at::Tensor Delta(const LoraAdapter& a) {
  return torch::matmul(a.B.detach(), a.A.detach()).mul(a.scale);
}

}  // namespace

at::Tensor LoraAdapter::Update(const at::Tensor& x, bool training) const {
  at::Tensor h = x.to(A.scalar_type());
  if (training && dropout > 0 && torch::GradMode::is_enabled()) h = torch::dropout(h, dropout, /*train=*/true);
  // [..., in] -> [..., r] -> [..., out]: two thin products instead of materialising B A.
  return torch::linear(torch::linear(h, A), B).mul(scale).to(x.scalar_type());
}

void AttachLora(DecoderImpl& model, const LoraConfig& config, uint64_t seed) {
  config.Validate("LoRA config");
  if (HasLora(model)) throw ModelError("AttachLora: the model already has LoRA adapters");
  for (torch::Tensor& p : model.parameters()) p.set_requires_grad(false);
  at::Generator generator = at::detail::createCPUGenerator(seed);
  // float32 under a float32 or bf16 base; float64 under a float64 one (exact gradient checks).
  const auto dtype = model.dtype() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
  const auto options = torch::TensorOptions().dtype(dtype).device(model.device());
  for (auto& [name, linear] : TargetLinears(model, config.target_modules)) {
    const int64_t out = linear->weight.size(0), in = linear->weight.size(1);
    auto adapter = std::make_shared<LoraAdapter>();
    const double bound = 1.0 / std::sqrt(static_cast<double>(in));
    adapter->A = torch::empty({config.r, in}, torch::TensorOptions().dtype(dtype));
    adapter->A.uniform_(-bound, bound, generator);  // drawn on the CPU: the same on every device
    adapter->A = adapter->A.to(options).set_requires_grad(true);
    adapter->B = torch::zeros({out, config.r}, options).set_requires_grad(true);
    adapter->scale = config.scale();
    adapter->dropout = config.dropout;
    linear->lora = std::move(adapter);
  }
}

bool HasLora(DecoderImpl& model) { return !AdaptedLinears(model).empty(); }

std::vector<std::pair<std::string, at::Tensor>> NamedLoraParameters(DecoderImpl& model) {
  std::vector<std::pair<std::string, at::Tensor>> named;
  for (auto& [name, linear] : AdaptedLinears(model)) {
    named.emplace_back(FileName(name, 'A'), linear->lora->A);
    named.emplace_back(FileName(name, 'B'), linear->lora->B);
  }
  return named;
}

std::vector<at::Tensor> LoraParameters(DecoderImpl& model) {
  std::vector<at::Tensor> tensors;
  for (auto& named : NamedLoraParameters(model)) tensors.push_back(named.second);
  return tensors;
}

AdaptersDisabled::AdaptersDisabled(DecoderImpl& model) : model_(model) {
  for (auto& adapted : AdaptedLinears(model_)) adapted.second->lora->enabled = false;
}

AdaptersDisabled::~AdaptersDisabled() {
  for (auto& adapted : AdaptedLinears(model_)) adapted.second->lora->enabled = true;
}

void SaveLoraAdapter(DecoderImpl& model, const LoraConfig& config, const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw ModelError("SaveLoraAdapter: cannot create '" + dir + "': " + ec.message());
  std::vector<std::pair<std::string, at::Tensor>> tensors = NamedLoraParameters(model);
  if (tensors.empty()) throw ModelError("SaveLoraAdapter: the model has no LoRA adapters");
  WriteTensorFile((fs::path(dir) / kWeightsFile).string(), tensors, torch::kFloat32, {{"format", "pt"}});
  config.WriteJsonFile((fs::path(dir) / kConfigFile).string());
}

LoraConfig LoadLoraAdapter(DecoderImpl& model, const std::string& dir) {
  const std::string config_path = (fs::path(dir) / kConfigFile).string();
  const std::string weights_path = (fs::path(dir) / kWeightsFile).string();
  const LoraConfig config = LoraConfig::FromJsonFile(config_path);
  const SafetensorsFile file = SafetensorsFile::Open(weights_path);
  AttachLora(model, config, /*seed=*/0);
  torch::NoGradGuard no_grad;
  std::set<std::string> used;
  for (auto& [name, tensor] : NamedLoraParameters(model)) {
    const TensorView* view = file.Find(name);
    if (view == nullptr) {
      throw ModelError("'" + weights_path + "': tensor '" + name + "' is missing (adapter_config.json's r " +
                       std::to_string(config.r) + " and target_modules name it)");
    }
    if (view->shape != tensor.sizes().vec()) {
      throw ModelError("'" + weights_path + "', tensor '" + name + "': shape " + c10::str(c10::IntArrayRef(view->shape)) +
                       " does not match this model and r (expected " + c10::str(tensor.sizes()) + ")");
    }
    tensor.copy_(ToTensor(*view));
    used.insert(name);
  }
  for (const TensorView& view : file.tensors()) {
    if (!used.count(view.name)) {
      throw ModelError("'" + weights_path + "', tensor '" + view.name +
                       "': not an adapter of this model's target modules (an adapter of another model?)");
    }
  }
  return config;
}

void CopyMergedWeights(DecoderImpl& target, DecoderImpl& source) {
  torch::NoGradGuard no_grad;
  auto target_modules = target.named_modules("", /*include_self=*/false);
  for (auto& [name, linear] : AdaptedLinears(source)) {
    const std::shared_ptr<torch::nn::Module>* module = target_modules.find(name);
    auto* into = module != nullptr ? (*module)->as<LinearImpl>() : nullptr;
    if (into == nullptr || into->weight.sizes() != linear->weight.sizes()) {
      throw ModelError("CopyMergedWeights: module '" + name + "' is missing or has another shape");
    }
    const at::Tensor delta = Delta(*linear->lora);
    // Out of place: to() returns the source's own weight when the dtype already matches.
    into->weight.copy_(linear->weight.to(delta.scalar_type()) + delta);
  }
}

void MergeLora(DecoderImpl& model) {
  model.StoreLinearsIn(model.dtype());  // a base kept in bf16 is widened first: the merge is not rounded
  CopyMergedWeights(model, model);
  for (auto& adapted : AdaptedLinears(model)) adapted.second->lora.reset();
  for (torch::Tensor& p : model.parameters()) p.set_requires_grad(true);
}

}  // namespace rl::model
