// safetensors: reading and writing the Hugging Face tensor file format, without LibTorch.
//
// A safetensors file is
//   u64 little-endian N | N bytes of JSON header | byte buffer
// and the header maps each tensor name to {"dtype", "shape", "data_offsets": [begin, end]},
// offsets relative to the byte buffer, plus an optional "__metadata__" string map. We accept a
// file only when it follows the format's rules exactly:
//   - the header is a JSON object (trailing spaces allowed), at most 100 MB, names unique,
//     nested at most 8 levels deep (a valid one needs 3);
//   - dtype is F32, BF16 or F16 (any other dtype is refused by name);
//   - shape × dtype size == end − begin, with no overflow;
//   - the offsets tile the buffer: sorted by begin, each tensor starts where the previous one
//     ended, the first at 0, the last at the end of the file (no gaps, no overlaps, in bounds).
// Anything else is a ModelError naming the file and the tensor.
//
//   SafetensorsFile file = SafetensorsFile::Open("model.safetensors");   // mmap, validated
//   const TensorView& w = file.Get("model.norm.weight");                 // throws if absent
//   w.dtype, w.shape, w.bytes                                            // bytes point into the
//   map
//
//   SafetensorsCheckpoint ckpt = SafetensorsCheckpoint::OpenDirectory("Qwen2.5-0.5B");
//   // opens model.safetensors, or every shard named by model.safetensors.index.json
//
//   WriteSafetensors("out.safetensors", blobs, {{"format", "pt"}});
//
// Views stay valid as long as the SafetensorsFile (or checkpoint) that made them is alive.
// Reading is safe from many threads at once (the objects are immutable after Open); the files
// must not be modified while mapped.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "rl/model/model_error.h"

namespace rl::model {

enum class Dtype { kF32, kBF16, kF16 };

// "F32", "BF16", "F16".
std::string_view DtypeName(Dtype dtype);
// Bytes per element: 4, 2, 2.
int64_t DtypeSize(Dtype dtype);

struct TensorView {
  std::string name;
  Dtype dtype = Dtype::kF32;
  std::vector<int64_t> shape;        // empty for a scalar
  std::span<const std::byte> bytes;  // little-endian element data, not necessarily aligned
  int64_t numel() const;
};

// One validated, memory-mapped safetensors file. Move-only: it owns the mapping.
class SafetensorsFile {
 public:
  // Maps and validates `path`. Throws ModelError on any violation of the format.
  static SafetensorsFile Open(const std::string& path);
  // Validates an in-memory file image (the bytes must outlive the returned object); `name` is
  // used in error messages. The same checks as Open.
  static SafetensorsFile FromBytes(std::span<const std::byte> image, const std::string& name);

  SafetensorsFile(SafetensorsFile&&) noexcept;
  SafetensorsFile& operator=(SafetensorsFile&&) noexcept;
  ~SafetensorsFile();

  const std::string& path() const { return path_; }
  // In the order of their data offsets.
  const std::vector<TensorView>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // nullptr when there is no tensor of that name.
  const TensorView* Find(std::string_view name) const;
  // Throws ModelError naming the file when there is no tensor of that name.
  const TensorView& Get(std::string_view name) const;

 private:
  struct Mapping;
  SafetensorsFile() = default;
  void Parse(std::span<const std::byte> image);

  std::string path_;
  std::unique_ptr<Mapping> mapping_;
  std::vector<TensorView> tensors_;
  std::map<std::string, std::string> metadata_;
};

// A checkpoint directory's tensors: a single model.safetensors, or the shards listed by
// model.safetensors.index.json ({"metadata": {...}, "weight_map": {tensor: shard file}}).
// Every shard is validated, every weight_map entry must be found in its shard, and a tensor may
// not appear twice.
class SafetensorsCheckpoint {
 public:
  static SafetensorsCheckpoint OpenDirectory(const std::string& dir);
  // nullptr when absent.
  const TensorView* Find(std::string_view name) const;
  // Throws ModelError naming the directory when absent.
  const TensorView& Get(std::string_view name) const;
  // The file holding `name` (for error messages); empty when absent.
  const std::string& FileOf(std::string_view name) const;
  std::vector<std::string> names() const;
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
  std::vector<SafetensorsFile> files_;
  std::map<std::string, std::pair<size_t, size_t>, std::less<>> index_;  // name -> (file, tensor)
};

// One tensor to write: raw little-endian bytes of `dtype` with `shape`.
struct TensorBlob {
  std::string name;
  Dtype dtype = Dtype::kF32;
  std::vector<int64_t> shape;
  std::span<const std::byte> bytes;
};

// Writes a safetensors file: the header lists tensors in the given order, padded with spaces to
// a multiple of 8 bytes so that the buffer is aligned. Written to `path`.tmp and renamed, so a
// crash never leaves a half-written file under `path`. Throws ModelError on a name given twice,
// a size that does not match the shape, or an I/O failure.
void WriteSafetensors(const std::string& path, std::span<const TensorBlob> tensors,
                      const std::map<std::string, std::string>& metadata = {});

}  // namespace rl::model
