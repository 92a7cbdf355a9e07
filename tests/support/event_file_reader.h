// A reader of TensorBoard event files written for the tests from the format's specification,
// independently of trainer/tensorboard.cpp: its own bitwise CRC-32C (reflected polynomial
// 0x82F63B78) and a generic protobuf wire-format walk that skips fields it does not know.
// Throws std::runtime_error naming the record and what is wrong with it.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace rl::testing {

struct TbEvent {
  double wall_time = 0;
  int64_t step = 0;
  std::string file_version;
  std::vector<std::pair<std::string, float>> values;  // Summary.value: (tag, simple_value)
  int64_t session_status = 0;                         // SessionLog.status; 1: START
};

inline uint32_t SpecCrc32c(const std::string& data) {
  uint32_t crc = 0xffffffffu;
  for (unsigned char byte : data) {
    crc ^= byte;
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ (0x82f63b78u & (0u - (crc & 1u)));
  }
  return ~crc;
}

inline uint32_t SpecMaskedCrc32c(const std::string& data) {
  const uint32_t crc = SpecCrc32c(data);
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

// The wire format, field by field.
class ProtoCursor {
 public:
  explicit ProtoCursor(std::string bytes) : bytes_(std::move(bytes)) {}
  bool done() const { return pos_ >= bytes_.size(); }
  uint64_t Varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      const auto byte = static_cast<unsigned char>(Take(1)[0]);
      v |= static_cast<uint64_t>(byte & 0x7f) << shift;
      if ((byte & 0x80) == 0) return v;
    }
    throw std::runtime_error("varint longer than 10 bytes");
  }
  std::string Take(size_t n) {
    if (pos_ + n > bytes_.size()) throw std::runtime_error("truncated protobuf");
    std::string out = bytes_.substr(pos_, n);
    pos_ += n;
    return out;
  }
  template <typename T>
  T Fixed() {
    const std::string raw = Take(sizeof(T));
    uint64_t bits = 0;
    for (size_t i = 0; i < sizeof(T); ++i) bits |= static_cast<uint64_t>(static_cast<unsigned char>(raw[i])) << (8 * i);
    T value;  // the host is little-endian, as the format is
    std::memcpy(&value, &bits, sizeof(T));
    return value;
  }
  std::string Bytes() { return Take(static_cast<size_t>(Varint())); }
  void Skip(uint64_t wire_type) {
    if (wire_type == 0) Varint();
    else if (wire_type == 1) Take(8);
    else if (wire_type == 2) Bytes();
    else if (wire_type == 5) Take(4);
    else throw std::runtime_error("unknown wire type " + std::to_string(wire_type));
  }

 private:
  std::string bytes_;
  size_t pos_ = 0;
};

inline std::pair<std::string, float> ParseSummaryValue(std::string bytes) {
  ProtoCursor c(std::move(bytes));
  std::pair<std::string, float> value{"", 0.0f};
  while (!c.done()) {
    const uint64_t key = c.Varint();
    if (key == ((1 << 3) | 2)) value.first = c.Bytes();
    else if (key == ((2 << 3) | 5)) value.second = c.Fixed<float>();
    else c.Skip(key & 7);
  }
  return value;
}

inline TbEvent ParseEvent(std::string bytes) {
  ProtoCursor c(std::move(bytes));
  TbEvent e;
  while (!c.done()) {
    const uint64_t key = c.Varint();
    if (key == ((1 << 3) | 1)) {
      e.wall_time = c.Fixed<double>();
    } else if (key == ((2 << 3) | 0)) {
      e.step = static_cast<int64_t>(c.Varint());
    } else if (key == ((3 << 3) | 2)) {
      e.file_version = c.Bytes();
    } else if (key == ((7 << 3) | 2)) {
      ProtoCursor session_log(c.Bytes());
      while (!session_log.done()) {
        const uint64_t k = session_log.Varint();
        if (k == ((1 << 3) | 0)) e.session_status = static_cast<int64_t>(session_log.Varint());
        else session_log.Skip(k & 7);
      }
    } else if (key == ((5 << 3) | 2)) {
      ProtoCursor summary(c.Bytes());
      while (!summary.done()) {
        const uint64_t k = summary.Varint();
        if (k == ((1 << 3) | 2)) e.values.push_back(ParseSummaryValue(summary.Bytes()));
        else summary.Skip(k & 7);
      }
    } else {
      c.Skip(key & 7);
    }
  }
  return e;
}

// Every record of the file, both CRCs checked.
inline std::vector<TbEvent> ReadEventFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  ProtoCursor file(buffer.str());
  std::vector<TbEvent> events;
  while (!file.done()) {
    const std::string where = path + ": record " + std::to_string(events.size());
    const std::string length_bytes = file.Take(8);
    const auto length = ProtoCursor(length_bytes).Fixed<uint64_t>();
    if (file.Fixed<uint32_t>() != SpecMaskedCrc32c(length_bytes)) throw std::runtime_error(where + ": length CRC");
    std::string data = file.Take(static_cast<size_t>(length));
    if (file.Fixed<uint32_t>() != SpecMaskedCrc32c(data)) throw std::runtime_error(where + ": data CRC");
    events.push_back(ParseEvent(std::move(data)));
  }
  return events;
}

// The scalar events TensorBoard keeps for the run directory `dir`, as its loader with
// file_version 2 does (tensorboard/backend/event_processing/plugin_event_accumulator.py,
// _CheckForRestartAndMaybePurge): the files in name order, and at every SessionLog START but
// the directory's first, every scalar read so far at that step or later dropped.
inline std::vector<TbEvent> ShownEvents(const std::filesystem::path& dir) {
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  std::vector<TbEvent> shown;
  bool started = false;
  for (const std::filesystem::path& file : files) {
    for (TbEvent& e : ReadEventFile(file.string())) {
      if (e.session_status == 1) {
        if (started) std::erase_if(shown, [&](const TbEvent& s) { return s.step >= e.step; });
        started = true;
      } else if (!e.values.empty()) {
        shown.push_back(std::move(e));
      }
    }
  }
  return shown;
}

}  // namespace rl::testing
