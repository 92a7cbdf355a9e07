// Conversions between safetensors views and LibTorch tensors.
#include "rl/model/tensor_io.h"

#include <cstring>

#include <ATen/ATen.h>

namespace rl::model {

at::ScalarType ToScalarType(Dtype dtype) {
  switch (dtype) {
    case Dtype::kF32:
      return at::kFloat;
    case Dtype::kBF16:
      return at::kBFloat16;
    case Dtype::kF16:
      return at::kHalf;
  }
  return at::kFloat;
}

Dtype ToDtype(at::ScalarType type, const std::string& what) {
  switch (type) {
    case at::kFloat:
      return Dtype::kF32;
    case at::kBFloat16:
      return Dtype::kBF16;
    case at::kHalf:
      return Dtype::kF16;
    default:
      throw ModelError(what + ": dtype " + std::string(c10::toString(type)) +
                       " cannot be stored (supported: float32, bfloat16, float16)");
  }
}

at::Tensor ToTensor(const TensorView& view) {
  // A copy, not from_blob: the mapped bytes need not be aligned for the element type.
  at::Tensor out = at::empty(view.shape, at::TensorOptions().dtype(ToScalarType(view.dtype)));
  std::memcpy(out.data_ptr(), view.bytes.data(), view.bytes.size());
  return out;
}

void WriteTensorFile(const std::string& path,
                     const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                     at::ScalarType dtype, const std::map<std::string, std::string>& metadata) {
  const Dtype file_dtype = ToDtype(dtype, "writing '" + path + "'");
  std::vector<at::Tensor> cpu;  // keeps the converted data alive while writing
  std::vector<TensorBlob> blobs;
  cpu.reserve(tensors.size());
  for (const auto& [name, tensor] : tensors) {
    cpu.push_back(tensor.detach().to(at::kCPU, dtype).contiguous());
    const at::Tensor& t = cpu.back();
    blobs.push_back(
        {name,
         file_dtype,
         t.sizes().vec(),
         {static_cast<const std::byte*>(t.data_ptr()), static_cast<size_t>(t.nbytes())}});
  }
  WriteSafetensors(path, blobs, metadata);
}

}  // namespace rl::model
