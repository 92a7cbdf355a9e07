#include "trainer/tensorboard.h"

#include <unistd.h>

#include <array>
#include <bit>
#include <chrono>
#include <filesystem>
#include <stdexcept>

#include <boost/crc.hpp>

namespace rl::trainer {
namespace {

namespace fs = std::filesystem;

// Protobuf wire types of the fields written here.
constexpr uint32_t kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5;

void PutVarint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

void PutKey(std::string& out, uint32_t field, uint32_t wire_type) { PutVarint(out, (field << 3) | wire_type); }

// Little-endian, as protobuf's fixed fields and TFRecord's framing are.
template <typename T>
void PutLittleEndian(std::string& out, T v) {
  for (size_t i = 0; i < sizeof(T); ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

void PutBytesField(std::string& out, uint32_t field, std::string_view bytes) {
  PutKey(out, field, kLengthDelimited);
  PutVarint(out, bytes.size());
  out.append(bytes);
}

double WallTime() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string Hostname() {
  std::array<char, 256> name{};
  if (gethostname(name.data(), name.size() - 1) != 0) return "localhost";
  return name.data();
}

// The start of an Event at a step: its wall_time and step fields.
std::string EventAt(double wall_time, int64_t step) {
  std::string event;
  PutKey(event, 1, kFixed64);
  PutLittleEndian<uint64_t>(event, std::bit_cast<uint64_t>(wall_time));
  PutKey(event, 2, kVarint);
  PutVarint(event, static_cast<uint64_t>(step));  // int64: negative steps take ten bytes, as in protobuf
  return event;
}

}  // namespace

uint32_t Crc32c(std::string_view data) {
  boost::crc_optimal<32, 0x1EDC6F41, 0xFFFFFFFF, 0xFFFFFFFF, true, true> crc;
  crc.process_bytes(data.data(), data.size());
  return crc.checksum();
}

uint32_t MaskedCrc32c(std::string_view data) {
  const uint32_t crc = Crc32c(data);
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

std::string FrameRecord(std::string_view data) {
  std::string length;
  PutLittleEndian<uint64_t>(length, data.size());
  std::string record = length;
  PutLittleEndian<uint32_t>(record, MaskedCrc32c(length));
  record.append(data);
  PutLittleEndian<uint32_t>(record, MaskedCrc32c(data));
  return record;
}

std::string EncodeFileVersionEvent(double wall_time) {
  std::string event;
  PutKey(event, 1, kFixed64);
  PutLittleEndian<uint64_t>(event, std::bit_cast<uint64_t>(wall_time));
  PutBytesField(event, 3, "brain.Event:2");
  return event;
}

std::string EncodeSessionStartEvent(double wall_time, int64_t step) {
  std::string session_log;
  PutKey(session_log, 1, kVarint);
  PutVarint(session_log, 1);  // SessionLog.START
  std::string event = EventAt(wall_time, step);
  PutBytesField(event, 7, session_log);
  return event;
}

std::string EncodeScalarEvent(double wall_time, int64_t step, std::string_view tag, float value) {
  std::string summary_value;
  PutBytesField(summary_value, 1, tag);
  PutKey(summary_value, 2, kFixed32);
  PutLittleEndian<uint32_t>(summary_value, std::bit_cast<uint32_t>(value));
  std::string summary;
  PutBytesField(summary, 1, summary_value);
  std::string event = EventAt(wall_time, step);
  PutBytesField(event, 5, summary);
  return event;
}

std::string TensorBoardTag(std::string_view metric) {
  if (metric.rfind("eval/", 0) == 0) return std::string(metric);
  return "train/" + std::string(metric);
}

TensorBoardWriter::TensorBoardWriter(const std::string& dir, int64_t first_step) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw std::runtime_error("tensorboard: cannot create '" + dir + "': " + ec.message());
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(
                           std::chrono::system_clock::now().time_since_epoch()).count();
  path_ = (fs::path(dir) / ("events.out.tfevents." + std::to_string(seconds) + "." + Hostname())).string();
  out_.open(path_, std::ios::binary | std::ios::app);
  if (!out_) throw std::runtime_error("tensorboard: cannot open '" + path_ + "' for writing");
  out_ << FrameRecord(EncodeFileVersionEvent(WallTime()));
  out_ << FrameRecord(EncodeSessionStartEvent(WallTime(), first_step));
  Flush();
}

void TensorBoardWriter::AddScalar(std::string_view tag, double value, int64_t step) {
  out_ << FrameRecord(EncodeScalarEvent(WallTime(), step, tag, static_cast<float>(value)));
}

void TensorBoardWriter::AddMetrics(const nlohmann::ordered_json& metrics, int64_t step) {
  for (const auto& [key, value] : metrics.items()) {
    if (key != "step" && value.is_number()) AddScalar(TensorBoardTag(key), value.get<double>(), step);
  }
}

void TensorBoardWriter::Flush() {
  out_.flush();
  if (!out_) throw std::runtime_error("tensorboard: writing '" + path_ + "' failed");
}

}  // namespace rl::trainer
