// The LibTorch side of safetensors: views to tensors and tensors to files. The format itself
// (parsing, validation, mmap) is torch-free in safetensors.h.
//
//   SafetensorsFile file = SafetensorsFile::Open("model.safetensors");
//   torch::Tensor w = ToTensor(file.Get("model.norm.weight"));   // a CPU copy, file's dtype
//   WriteTensorFile("out.safetensors", {{"w", w}}, torch::kBFloat16);
//
// Free functions without shared state: safe from any thread.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>

#include "rl/model/safetensors.h"

namespace rl::model {

at::ScalarType ToScalarType(Dtype dtype);
// Throws ModelError naming `what` for a dtype safetensors cannot hold here (not F32/BF16/F16).
Dtype ToDtype(at::ScalarType type, const std::string& what);

// A contiguous CPU tensor holding a copy of the view's data, in the view's dtype.
at::Tensor ToTensor(const TensorView& view);

// Writes `tensors` (any device/dtype/layout) as `dtype` into a safetensors file, in the given
// order. Throws ModelError.
void WriteTensorFile(const std::string& path,
                     const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                     at::ScalarType dtype, const std::map<std::string, std::string>& metadata = {});

}  // namespace rl::model
