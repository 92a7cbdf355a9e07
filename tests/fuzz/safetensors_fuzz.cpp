// The safetensors parser on arbitrary file images (the whole input is the file).
// Promises checked (rl/model/safetensors.h): a bad file is a ModelError, never a crash or
// another exception; an accepted file's views lie inside the image, tile its data buffer and
// match their shapes; written back with WriteSafetensors and reopened with Open (mmap, the
// same Parse), it reads the same.
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "rl/model/safetensors.h"
#include "tests/fuzz/fuzz_input.h"

namespace {

using rl::fuzz::Require;
using rl::model::SafetensorsFile;
using rl::model::TensorBlob;
using rl::model::TensorView;

void CheckViews(const SafetensorsFile& file, std::span<const std::byte> image) {
  const std::byte* cursor = nullptr;
  for (const TensorView& t : file.tensors()) {
    Require(t.bytes.data() >= image.data() &&
                t.bytes.data() + t.bytes.size() <= image.data() + image.size(),
            "tensor bytes lie inside the file image");
    Require(cursor == nullptr || t.bytes.data() == cursor, "tensors tile the data buffer");
    cursor = t.bytes.data() + t.bytes.size();
    Require(static_cast<uint64_t>(t.numel()) * static_cast<uint64_t>(DtypeSize(t.dtype)) ==
                t.bytes.size(),
            "bytes = numel x dtype size");
    Require(file.Find(t.name) != nullptr, "Find finds every listed tensor");
    // Read every byte, so that ASan sees a view that points past the image.
    volatile unsigned sum = 0;
    for (std::byte b : t.bytes) sum = sum + static_cast<unsigned>(b);
  }
  Require(file.tensors().empty() || cursor == image.data() + image.size(),
          "the last tensor ends at the end of the file");
}

void CheckRoundTrip(const SafetensorsFile& file) {
  std::vector<TensorBlob> blobs;
  for (const TensorView& t : file.tensors()) blobs.push_back({t.name, t.dtype, t.shape, t.bytes});
  const std::string path =
      "/tmp/safetensors_fuzz." + std::to_string(getpid()) + ".safetensors";
  rl::model::WriteSafetensors(path, blobs, file.metadata());
  {
    const SafetensorsFile again = SafetensorsFile::Open(path);
    Require(again.metadata() == file.metadata(), "metadata survives a write and a read");
    Require(again.tensors().size() == file.tensors().size(), "tensors survive a write and a read");
    for (size_t i = 0; i < again.tensors().size(); ++i) {
      const TensorView& a = again.tensors()[i];
      const TensorView& b = file.tensors()[i];
      Require(a.name == b.name && a.dtype == b.dtype && a.shape == b.shape &&
                  std::equal(a.bytes.begin(), a.bytes.end(), b.bytes.begin(), b.bytes.end()),
              "each tensor survives a write and a read");
    }
  }
  std::remove(path.c_str());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const std::byte> image(reinterpret_cast<const std::byte*>(data), size);
  std::optional<SafetensorsFile> file;
  try {
    file.emplace(SafetensorsFile::FromBytes(image, "fuzz.safetensors"));
  } catch (const rl::model::ModelError&) {
    return 0;  // a refused file: what the parser is for
  }
  // An accepted file must write and read back without any error.
  CheckViews(*file, image);
  CheckRoundTrip(*file);
  return 0;
}
