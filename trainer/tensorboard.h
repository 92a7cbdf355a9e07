// trainer/tensorboard.h: TensorBoard event files, written without TensorFlow or protobuf.
//
//   TensorBoardWriter tb((fs::path(output_dir) / "tensorboard").string(), 0);  // creates the file
//   tb.AddMetrics(metrics_line, step);  // "reward" -> "train/reward", "eval/accuracy" as it is
//   tb.Flush();                         // a killed run keeps every flushed step
//
// The file is `DIR/events.out.tfevents.<unix time>.<hostname>`, a sequence of TFRecords:
//   uint64 length (little-endian) | uint32 masked CRC-32C of those 8 bytes | data |
//   uint32 masked CRC-32C of the data
// where masked(c) = ((c >> 15) | (c << 17)) + 0xa282ead8, and each data is an `Event`
// protobuf (tensorboard/compat/proto/event.proto, summary.proto). Only these fields are written:
//   Event      { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5;
//                SessionLog session_log = 7; }
//   Summary    { repeated Value value = 1; }
//   Value      { string tag = 1; float simple_value = 2; }
//   SessionLog { SessionStatus status = 1; }  (START = 1)
// The first record is the Event with file_version "brain.Event:2", the second a SessionLog
// START at the first step the writer will log; each scalar is then one Event with one Value, as
// TensorBoard's own writers emit them. TensorBoard reads simple_value as a scalar series named
// by its tag.
//
// Why the START: a run resumed from its checkpoint at step T logs steps T+1... again, which the
// interrupted run may have logged already, in an earlier file of the same directory. With
// file_version 2 TensorBoard's loader (backend/event_processing's EventAccumulator, which
// reads a directory's files in name order) drops what it read at steps at or after a START's
// step, for every tag, except at the directory's first START, which marks a start and not a
// restart. So every writer writes one: a fresh run's at step 0 hides an earlier run's whole
// series in the same directory, a resumed run's at T+1 hides the repeated steps.
//
// Errors: the constructor and Flush throw std::runtime_error naming the file when it cannot be
// created or written.
// Thread safety: none; one writer per file, used by one thread (rank 0's training loop).
#pragma once

#include <cstdint>
#include <fstream>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace rl::trainer {

// CRC-32C (Castagnoli, as iSCSI and TFRecord use it) of `data`, and its masked form.
uint32_t Crc32c(std::string_view data);
uint32_t MaskedCrc32c(std::string_view data);

// `data` framed as one TFRecord (length, its masked CRC, data, the data's masked CRC).
std::string FrameRecord(std::string_view data);

// The serialized Event protobufs this writer emits.
std::string EncodeFileVersionEvent(double wall_time);
std::string EncodeSessionStartEvent(double wall_time, int64_t step);
std::string EncodeScalarEvent(double wall_time, int64_t step, std::string_view tag, float value);

// The tag a metrics.jsonl key gets: "train/" + key as TRL and transformers log training
// metrics, except keys already under "eval/" (evaluations), which keep their name.
std::string TensorBoardTag(std::string_view metric);

class TensorBoardWriter {
 public:
  // Creates `dir` if needed and a new event file in it (appended to if that name exists),
  // starting with the file_version record and a SessionLog START at `first_step`, the first
  // step this writer will log (see above).
  TensorBoardWriter(const std::string& dir, int64_t first_step);

  TensorBoardWriter(const TensorBoardWriter&) = delete;
  TensorBoardWriter& operator=(const TensorBoardWriter&) = delete;

  const std::string& path() const { return path_; }

  void AddScalar(std::string_view tag, double value, int64_t step);
  // Every number of `metrics` (a metrics.jsonl line) but "step", tagged by TensorBoardTag;
  // strings, booleans and nulls are not scalars and are left out.
  void AddMetrics(const nlohmann::ordered_json& metrics, int64_t step);
  // Pushes what was added to the file.
  void Flush();

 private:
  std::string path_;
  std::ofstream out_;
};

}  // namespace rl::trainer
