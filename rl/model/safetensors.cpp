// safetensors parsing, validation, mmap and writing. No LibTorch here: the torch adapter is
// tensor_io.cpp.
#include "rl/model/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>

#include <nlohmann/json.hpp>

namespace rl::model {

static_assert(std::endian::native == std::endian::little,
              "safetensors data is little-endian; a big-endian host needs byte swapping");

namespace {

// The reference implementation refuses headers above 100 MB; so do we (a lying length must not
// make us allocate or parse gigabytes).
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

[[noreturn]] void Fail(const std::string& file, const std::string& what) {
  throw ModelError("safetensors file '" + file + "': " + what);
}

[[noreturn]] void FailTensor(const std::string& file, const std::string& tensor,
                             const std::string& what) {
  throw ModelError("safetensors file '" + file + "', tensor '" + tensor + "': " + what);
}

Dtype ParseDtype(const std::string& file, const std::string& tensor, const nlohmann::json& j) {
  if (!j.is_string()) FailTensor(file, tensor, "\"dtype\" must be a string");
  const std::string name = j.get<std::string>();
  if (name == "F32") return Dtype::kF32;
  if (name == "BF16") return Dtype::kBF16;
  if (name == "F16") return Dtype::kF16;
  FailTensor(file, tensor, "dtype '" + name + "' is not supported (supported: F32, BF16, F16)");
}

std::vector<int64_t> ParseShape(const std::string& file, const std::string& tensor,
                                const nlohmann::json& j) {
  if (!j.is_array()) FailTensor(file, tensor, "\"shape\" must be an array of integers");
  std::vector<int64_t> shape;
  for (const auto& d : j) {
    if (!d.is_number_unsigned()) {
      FailTensor(file, tensor, "\"shape\" must hold non-negative integers, got " + d.dump());
    }
    const uint64_t v = d.get<uint64_t>();
    if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      FailTensor(file, tensor, "dimension " + d.dump() + " is too large");
    }
    shape.push_back(static_cast<int64_t>(v));
  }
  return shape;
}

// Number of bytes shape × dtype occupies; fails on overflow.
uint64_t ShapeBytes(const std::string& file, const std::string& tensor,
                    const std::vector<int64_t>& shape, Dtype dtype) {
  uint64_t bytes = static_cast<uint64_t>(DtypeSize(dtype));
  for (int64_t d : shape) {
    const auto ud = static_cast<uint64_t>(d);
    if (ud != 0 && bytes > std::numeric_limits<uint64_t>::max() / ud) {
      FailTensor(file, tensor, "shape overflows 64-bit byte count");
    }
    bytes *= ud;
  }
  return bytes;
}

// A valid header nests three levels ({name: {"shape": [dims]}}). Deeper values are dropped
// while parsing and the header refused: nlohmann's copy and dump recurse, and a header of
// nested brackets would overflow the stack.
constexpr int kMaxHeaderDepth = 8;

// Parses the JSON header, refusing duplicate top-level names (nlohmann would keep the last).
nlohmann::json ParseHeaderJson(const std::string& file, std::string_view text) {
  std::set<std::string> seen;
  std::string duplicate;
  bool too_deep = false;
  auto callback = [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
    if (depth == 1 && event == nlohmann::json::parse_event_t::key) {
      const auto key = parsed.get<std::string>();
      if (!seen.insert(key).second && duplicate.empty()) duplicate = key;
    }
    if (depth >= kMaxHeaderDepth && (event == nlohmann::json::parse_event_t::object_start ||
                                     event == nlohmann::json::parse_event_t::array_start)) {
      too_deep = true;
      return false;  // skip the value
    }
    return true;
  };
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(text.begin(), text.end(), callback);
  } catch (const nlohmann::json::exception& e) {
    Fail(file, std::string("header is not valid JSON: ") + e.what());
  }
  if (too_deep) {
    Fail(file, "header is nested more than " + std::to_string(kMaxHeaderDepth) + " levels deep");
  }
  if (!duplicate.empty()) FailTensor(file, duplicate, "name appears twice in the header");
  if (!header.is_object()) Fail(file, "header must be a JSON object");
  return header;
}

}  // namespace

std::string_view DtypeName(Dtype dtype) {
  switch (dtype) {
    case Dtype::kF32:
      return "F32";
    case Dtype::kBF16:
      return "BF16";
    case Dtype::kF16:
      return "F16";
  }
  return "?";
}

int64_t DtypeSize(Dtype dtype) { return dtype == Dtype::kF32 ? 4 : 2; }

int64_t TensorView::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

// ---------------------------------------------------------------------------------------------
// SafetensorsFile

struct SafetensorsFile::Mapping {
  void* address = nullptr;
  size_t size = 0;
  ~Mapping() {
    if (address != nullptr) munmap(address, size);
  }
};

SafetensorsFile::SafetensorsFile(SafetensorsFile&&) noexcept = default;
SafetensorsFile& SafetensorsFile::operator=(SafetensorsFile&&) noexcept = default;
SafetensorsFile::~SafetensorsFile() = default;

SafetensorsFile SafetensorsFile::Open(const std::string& path) {
  SafetensorsFile file;
  file.path_ = path;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) Fail(path, std::string("cannot open: ") + std::strerror(errno));
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    Fail(path, "not a regular file");
  }
  const auto size = static_cast<size_t>(st.st_size);
  if (size < 8) {
    ::close(fd);
    Fail(path,
         "file is " + std::to_string(size) + " bytes, too small for the 8-byte header length");
  }
  void* address = mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (address == MAP_FAILED) Fail(path, std::string("mmap failed: ") + std::strerror(errno));
  file.mapping_ = std::make_unique<Mapping>();
  file.mapping_->address = address;
  file.mapping_->size = size;
  file.Parse({static_cast<const std::byte*>(address), size});
  return file;
}

SafetensorsFile SafetensorsFile::FromBytes(std::span<const std::byte> image,
                                           const std::string& name) {
  SafetensorsFile file;
  file.path_ = name;
  file.Parse(image);
  return file;
}

void SafetensorsFile::Parse(std::span<const std::byte> image) {
  if (image.size() < 8) Fail(path_, "file is too small for the 8-byte header length");
  uint64_t header_len = 0;
  std::memcpy(&header_len, image.data(), 8);
  if (header_len > kMaxHeaderBytes) {
    Fail(path_, "header length " + std::to_string(header_len) + " exceeds the 100 MB limit");
  }
  if (header_len > image.size() - 8) {
    Fail(path_, "header length " + std::to_string(header_len) + " runs past the end of the " +
                    std::to_string(image.size()) + "-byte file (truncated?)");
  }
  const std::string_view text(reinterpret_cast<const char*>(image.data()) + 8, header_len);
  if (text.empty() || text.front() != '{') Fail(path_, "header must start with '{'");
  const nlohmann::json header = ParseHeaderJson(path_, text);

  const std::span<const std::byte> buffer = image.subspan(8 + header_len);
  struct Entry {
    TensorView view;
    uint64_t begin, end;
  };
  std::vector<Entry> entries;
  for (const auto& [name, value] : header.items()) {
    if (name == "__metadata__") {
      if (!value.is_object()) Fail(path_, "\"__metadata__\" must be an object of strings");
      for (const auto& [k, v] : value.items()) {
        if (!v.is_string()) Fail(path_, "\"__metadata__\" value for '" + k + "' is not a string");
        metadata_[k] = v.get<std::string>();
      }
      continue;
    }
    if (!value.is_object()) FailTensor(path_, name, "entry must be an object");
    for (const char* key : {"dtype", "shape", "data_offsets"}) {
      if (!value.contains(key)) FailTensor(path_, name, std::string("missing \"") + key + "\"");
    }
    Entry e;
    e.view.name = name;
    e.view.dtype = ParseDtype(path_, name, value["dtype"]);
    e.view.shape = ParseShape(path_, name, value["shape"]);
    const auto& offsets = value["data_offsets"];
    if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() ||
        !offsets[1].is_number_unsigned()) {
      FailTensor(path_, name, "\"data_offsets\" must be [begin, end] with non-negative integers");
    }
    e.begin = offsets[0].get<uint64_t>();
    e.end = offsets[1].get<uint64_t>();
    if (e.end < e.begin) FailTensor(path_, name, "data_offsets end is before begin");
    const uint64_t expected = ShapeBytes(path_, name, e.view.shape, e.view.dtype);
    if (e.end - e.begin != expected) {
      FailTensor(path_, name,
                 "data_offsets span " + std::to_string(e.end - e.begin) + " bytes but shape " +
                     nlohmann::json(e.view.shape).dump() + " of " +
                     std::string(DtypeName(e.view.dtype)) + " needs " + std::to_string(expected));
    }
    entries.push_back(std::move(e));
  }

  // The offsets must tile [0, buffer size) exactly.
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t cursor = 0;
  for (const Entry& e : entries) {
    if (e.begin < cursor) {
      FailTensor(path_, e.view.name,
                 "data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) +
                     ") overlap the previous tensor, which ends at " + std::to_string(cursor));
    }
    if (e.begin > cursor) {
      FailTensor(path_, e.view.name,
                 "gap before data_offsets begin " + std::to_string(e.begin) +
                     " (previous tensor ends at " + std::to_string(cursor) + ")");
    }
    if (e.end > buffer.size()) {
      FailTensor(path_, e.view.name,
                 "data_offsets end " + std::to_string(e.end) + " is past the end of the " +
                     std::to_string(buffer.size()) + "-byte data buffer (truncated file?)");
    }
    cursor = e.end;
  }
  if (cursor != buffer.size()) {
    Fail(path_, "tensors cover " + std::to_string(cursor) + " bytes but the data buffer has " +
                    std::to_string(buffer.size()) + " (trailing bytes or wrong file size)");
  }
  tensors_.clear();
  for (Entry& e : entries) {
    e.view.bytes = buffer.subspan(e.begin, e.end - e.begin);
    tensors_.push_back(std::move(e.view));
  }
}

const TensorView* SafetensorsFile::Find(std::string_view name) const {
  for (const TensorView& t : tensors_) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

const TensorView& SafetensorsFile::Get(std::string_view name) const {
  const TensorView* t = Find(name);
  if (t == nullptr) FailTensor(path_, std::string(name), "no such tensor in the file");
  return *t;
}

// ---------------------------------------------------------------------------------------------
// SafetensorsCheckpoint

SafetensorsCheckpoint SafetensorsCheckpoint::OpenDirectory(const std::string& dir) {
  namespace fs = std::filesystem;
  SafetensorsCheckpoint ckpt;
  ckpt.dir_ = dir;
  const fs::path single = fs::path(dir) / "model.safetensors";
  const fs::path index_path = fs::path(dir) / "model.safetensors.index.json";
  if (fs::exists(single)) {
    ckpt.files_.push_back(SafetensorsFile::Open(single.string()));
    const auto& tensors = ckpt.files_[0].tensors();
    for (size_t i = 0; i < tensors.size(); ++i) ckpt.index_[tensors[i].name] = {0, i};
    return ckpt;
  }
  if (!fs::exists(index_path)) {
    throw ModelError("checkpoint directory '" + dir +
                     "': neither model.safetensors nor model.safetensors.index.json exists");
  }
  const std::string index_name = index_path.string();
  const nlohmann::json index = ReadModelJson(index_name);
  if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object()) {
    throw ModelError("'" + index_name + "': expected an object with a \"weight_map\" object");
  }
  // Open each shard once, in the order first named.
  std::map<std::string, size_t> shard_of_file;
  for (const auto& entry : index["weight_map"].items()) {
    // Named references, not a structured binding: the lambda below uses `tensor`, and C++20
    // compilers before clang 16 cannot capture a binding.
    const std::string& tensor = entry.key();
    const nlohmann::json& shard = entry.value();
    if (!shard.is_string()) {
      throw ModelError("'" + index_name + "', tensor '" + tensor + "': shard must be a string");
    }
    const std::string shard_name = shard.get<std::string>();
    // A shard is a plain file next to the index: never a path that escapes the directory.
    if (shard_name.empty() || shard_name.find('/') != std::string::npos ||
        shard_name.find('\\') != std::string::npos || shard_name == "." || shard_name == "..") {
      throw ModelError("'" + index_name + "', tensor '" + tensor + "': shard name '" + shard_name +
                       "' is not a plain file name");
    }
    if (!shard_of_file.count(shard_name)) {
      shard_of_file[shard_name] = ckpt.files_.size();
      ckpt.files_.push_back(SafetensorsFile::Open((fs::path(dir) / shard_name).string()));
    }
    const size_t f = shard_of_file[shard_name];
    const auto& tensors = ckpt.files_[f].tensors();
    const auto it = std::find_if(tensors.begin(), tensors.end(),
                                 [&](const TensorView& t) { return t.name == tensor; });
    if (it == tensors.end()) {
      throw ModelError("'" + index_name + "' maps tensor '" + tensor + "' to '" + shard_name +
                       "', which does not contain it");
    }
    ckpt.index_[tensor] = {f, static_cast<size_t>(it - tensors.begin())};
  }
  // Every tensor of every shard must be listed, and listed once (a tensor in two shards is
  // ambiguous).
  for (size_t f = 0; f < ckpt.files_.size(); ++f) {
    for (const TensorView& t : ckpt.files_[f].tensors()) {
      const auto it = ckpt.index_.find(t.name);
      if (it == ckpt.index_.end() || it->second.first != f) {
        throw ModelError("'" + index_name + "': tensor '" + t.name + "' in shard '" +
                         ckpt.files_[f].path() + "' is not mapped to that shard by weight_map");
      }
    }
  }
  return ckpt;
}

const TensorView* SafetensorsCheckpoint::Find(std::string_view name) const {
  const auto it = index_.find(name);
  if (it == index_.end()) return nullptr;
  return &files_[it->second.first].tensors()[it->second.second];
}

const TensorView& SafetensorsCheckpoint::Get(std::string_view name) const {
  const TensorView* t = Find(name);
  if (t == nullptr) {
    throw ModelError("checkpoint '" + dir_ + "': tensor '" + std::string(name) + "' is missing");
  }
  return *t;
}

const std::string& SafetensorsCheckpoint::FileOf(std::string_view name) const {
  static const std::string kNone;
  const auto it = index_.find(name);
  return it == index_.end() ? kNone : files_[it->second.first].path();
}

std::vector<std::string> SafetensorsCheckpoint::names() const {
  std::vector<std::string> out;
  for (const auto& [name, where] : index_) out.push_back(name);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Writing

void WriteSafetensors(const std::string& path, std::span<const TensorBlob> tensors,
                      const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();  // {} when no tensors
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const TensorBlob& t : tensors) {
    if (t.name == "__metadata__" || header.contains(t.name)) {
      throw ModelError("writing '" + path + "': tensor name '" + t.name +
                       "' given twice or reserved");
    }
    const uint64_t expected = ShapeBytes(path, t.name, t.shape, t.dtype);
    if (expected != t.bytes.size()) {
      FailTensor(path, t.name,
                 "has " + std::to_string(t.bytes.size()) + " bytes, shape needs " +
                     std::to_string(expected));
    }
    header[t.name] = {{"dtype", DtypeName(t.dtype)},
                      {"shape", t.shape},
                      {"data_offsets", {offset, offset + expected}}};
    offset += expected;
  }
  std::string text = header.dump();
  text.append((8 - (8 + text.size()) % 8) % 8, ' ');  // align the buffer to 8 bytes

  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw ModelError("writing '" + tmp + "': cannot open");
    const uint64_t header_len = text.size();
    out.write(reinterpret_cast<const char*>(&header_len), 8);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    for (const TensorBlob& t : tensors) {
      out.write(reinterpret_cast<const char*>(t.bytes.data()),
                static_cast<std::streamsize>(t.bytes.size()));
    }
    out.close();
    if (!out) throw ModelError("writing '" + tmp + "': I/O error (disk full?)");
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) throw ModelError("writing '" + path + "': rename failed: " + ec.message());
}

}  // namespace rl::model
