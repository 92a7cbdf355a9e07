// TensorBoard event files (trainer/tensorboard.h): CRC-32C against published check values,
// records read back by the specification's reader (tests/support/event_file_reader.h), the
// metrics-to-tags mapping, and the error when the directory cannot be made.
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <tuple>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "tests/support/event_file_reader.h"
#include "tests/support/temp_dir.h"
#include "trainer/tensorboard.h"

namespace fs = std::filesystem;
using namespace rl::trainer;
using rl::testing::ReadEventFile;
using rl::testing::ShownEvents;
using rl::testing::TbEvent;
using rl::testing::TempDir;

TEST_CASE("CRC-32C matches the published check values", "[tensorboard]") {
  // The catalogue's check value (CRC-32/ISCSI of "123456789") and RFC 3720's B.4 vectors.
  CHECK(Crc32c("123456789") == 0xE3069283u);
  CHECK(Crc32c(std::string(32, '\0')) == 0x8A9136AAu);
  CHECK(Crc32c(std::string(32, '\xff')) == 0x62A8AB43u);
  std::string ascending;
  for (int i = 0; i < 32; ++i) ascending.push_back(static_cast<char>(i));
  CHECK(Crc32c(ascending) == 0x46DD794Eu);
  CHECK(Crc32c("") == 0u);
  // The mask TFRecord applies: rotate right by 15, add a constant.
  const uint32_t crc = Crc32c("123456789");
  CHECK(MaskedCrc32c("123456789") == ((crc >> 15) | (crc << 17)) + 0xa282ead8u);
  CHECK(MaskedCrc32c("123456789") == rl::testing::SpecMaskedCrc32c("123456789"));
}

TEST_CASE("a framed record is length, its CRC, the data and the data's CRC", "[tensorboard]") {
  const std::string record = FrameRecord("abc");
  REQUIRE(record.size() == 8 + 4 + 3 + 4);
  CHECK(record.substr(0, 8) == std::string("\x03\0\0\0\0\0\0\0", 8));
  CHECK(record.substr(12, 3) == "abc");
  const uint32_t data_crc = MaskedCrc32c("abc");
  CHECK(record.substr(15) == std::string{static_cast<char>(data_crc & 0xff), static_cast<char>((data_crc >> 8) & 0xff),
                                         static_cast<char>((data_crc >> 16) & 0xff), static_cast<char>(data_crc >> 24)});
}

TEST_CASE("scalars written by the writer read back through the specification's reader", "[tensorboard]") {
  const TempDir tmp;
  std::string path;
  {
    TensorBoardWriter tb(tmp / "tensorboard", 1);
    path = tb.path();
    tb.AddScalar("train/reward", 0.75, 1);
    tb.AddScalar("train/kl", -1.5e-3, 2);
    tb.AddScalar("eval/accuracy ü", 1e30, int64_t{1} << 40);  // a long varint, a non-ASCII tag
    tb.Flush();
    // Flushed: the file is complete while the writer is still open (a killed run keeps it).
    const std::vector<TbEvent> flushed = ReadEventFile(path);
    CHECK(flushed.size() == 5);
  }
  const std::vector<TbEvent> events = ReadEventFile(path);
  REQUIRE(events.size() == 5);
  CHECK(events[0].file_version == "brain.Event:2");
  CHECK(events[0].values.empty());
  CHECK(events[0].session_status == 0);
  const double now = static_cast<double>(::time(nullptr));
  CHECK(std::abs(events[0].wall_time - now) < 60);
  CHECK(events[1].session_status == 1);  // START, at the first step the writer logs
  CHECK(events[1].step == 1);
  CHECK(events[1].values.empty());
  CHECK(events[1].file_version.empty());
  const std::vector<std::tuple<std::string, float, int64_t>> expected = {
      {"train/reward", 0.75f, 1}, {"train/kl", -1.5e-3f, 2}, {"eval/accuracy ü", 1e30f, int64_t{1} << 40}};
  for (size_t i = 0; i < expected.size(); ++i) {
    const TbEvent& e = events[i + 2];
    INFO(i);
    REQUIRE(e.values.size() == 1);
    CHECK(e.values[0].first == std::get<0>(expected[i]));
    CHECK(e.values[0].second == std::get<1>(expected[i]));
    CHECK(e.step == std::get<2>(expected[i]));
    CHECK(e.file_version.empty());
    CHECK(e.wall_time >= events[0].wall_time);
  }
}

TEST_CASE("a writer started at step T hides the steps from T on that the directory's earlier writers logged",
          "[tensorboard]") {
  const TempDir tmp;
  const std::string dir = tmp / "tensorboard";
  // (tag, step, value) of what TensorBoard shows, in the order read.
  const auto shown = [&] {
    std::vector<std::tuple<std::string, int64_t, float>> out;
    for (const TbEvent& e : ShownEvents(dir)) {
      for (const auto& [tag, value] : e.values) out.emplace_back(tag, e.step, value);
    }
    return out;
  };
  {
    TensorBoardWriter first(dir, 0);  // the directory's first START: a start, nothing hidden
    for (int64_t step = 0; step <= 5; ++step) first.AddScalar("train/loss", static_cast<double>(step), step);
    first.Flush();
  }
  CHECK(shown().size() == 6);
  {
    TensorBoardWriter resumed(dir, 4);  // a run resumed from step 3's checkpoint
    resumed.AddScalar("train/loss", 40.0, 4);
    resumed.Flush();
  }
  using Shown = std::vector<std::tuple<std::string, int64_t, float>>;
  CHECK(shown() == Shown{{"train/loss", 0, 0.0f}, {"train/loss", 1, 1.0f}, {"train/loss", 2, 2.0f},
                         {"train/loss", 3, 3.0f}, {"train/loss", 4, 40.0f}});
  {
    TensorBoardWriter fresh(dir, 0);  // a fresh run in the same directory: all of the above hidden
    fresh.AddScalar("eval/accuracy", 0.5, 0);
    fresh.Flush();
  }
  CHECK(shown() == Shown{{"eval/accuracy", 0, 0.5f}});
}

TEST_CASE("the file is named events.out.tfevents.<unix time>.<hostname>", "[tensorboard]") {
  const TempDir tmp;
  const auto before = ::time(nullptr);
  TensorBoardWriter tb((tmp.path() / "a" / "b").string(), 0);  // directories created
  char host[256] = {};
  REQUIRE(::gethostname(host, sizeof(host) - 1) == 0);
  const std::string name = fs::path(tb.path()).filename().string();
  std::smatch m;
  REQUIRE(std::regex_match(name, m, std::regex(R"(events\.out\.tfevents\.(\d+)\.(.+))")));
  CHECK(std::stoll(m[1].str()) >= before);
  CHECK(std::stoll(m[1].str()) <= ::time(nullptr));
  CHECK(m[2].str() == host);
  CHECK(fs::path(tb.path()).parent_path() == tmp.path() / "a" / "b");
}

TEST_CASE("a metrics line becomes train/ scalars; eval/ keeps its name; non-numbers are left out", "[tensorboard]") {
  CHECK(TensorBoardTag("reward") == "train/reward");
  CHECK(TensorBoardTag("completions/mean_length") == "train/completions/mean_length");
  CHECK(TensorBoardTag("eval/accuracy") == "eval/accuracy");
  const TempDir tmp;
  std::string path;
  {
    TensorBoardWriter tb(tmp.str(), 7);
    path = tb.path();
    const nlohmann::ordered_json m = {{"step", 7},          {"reward", 0.5},          {"unscorable", 2},
                                      {"note", "text"},     {"flag", true},           {"missing", nullptr},
                                      {"eval/accuracy", 0.25}, {"rewards/accuracy.math/mean", 1.0}};
    tb.AddMetrics(m, 7);
    tb.Flush();
  }
  const std::vector<TbEvent> events = ReadEventFile(path);
  std::vector<std::pair<std::string, float>> got;
  for (size_t i = 2; i < events.size(); ++i) {  // after the file_version and the START
    CHECK(events[i].step == 7);
    got.push_back(events[i].values.at(0));
  }
  const std::vector<std::pair<std::string, float>> expected = {
      {"train/reward", 0.5f}, {"train/unscorable", 2.0f}, {"eval/accuracy", 0.25f}, {"train/rewards/accuracy.math/mean", 1.0f}};
  CHECK(got == expected);
}

TEST_CASE("a directory that cannot be made is an error naming it", "[tensorboard]") {
  const TempDir tmp;
  std::ofstream(tmp / "file") << "not a directory";
  CHECK_THROWS_WITH(TensorBoardWriter((tmp.path() / "file" / "tensorboard").string(), 0),
                    Catch::Contains("tensorboard: cannot create") && Catch::Contains("file/tensorboard"));
}
