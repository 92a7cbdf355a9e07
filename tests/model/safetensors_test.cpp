// The safetensors format rules, without LibTorch: valid files round-trip, and every kind of
// damaged or lying file is refused with a message naming the file and the tensor.
#include <catch2/catch.hpp>

#include <cstring>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "rl/model/safetensors.h"
#include "tests/support/temp_dir.h"

using Catch::Matchers::Contains;
using rl::model::Dtype;
using rl::model::ModelError;
using rl::model::SafetensorsCheckpoint;
using rl::model::SafetensorsFile;
using rl::model::TensorBlob;
using rl::testing::TempDir;

namespace {

std::span<const std::byte> Bytes(const std::vector<float>& v) {
  return {reinterpret_cast<const std::byte*>(v.data()), v.size() * sizeof(float)};
}

// A file image: u64 header length, the header text as given, then `data_bytes` bytes.
std::vector<std::byte> Image(const std::string& header, size_t data_bytes, uint64_t header_len) {
  std::vector<std::byte> out(8 + header.size() + data_bytes, std::byte{0});
  std::memcpy(out.data(), &header_len, 8);
  std::memcpy(out.data() + 8, header.data(), header.size());
  for (size_t i = 0; i < data_bytes; ++i) out[8 + header.size() + i] = std::byte(i & 0xff);
  return out;
}
std::vector<std::byte> Image(const std::string& header, size_t data_bytes) {
  return Image(header, data_bytes, header.size());
}

std::string ErrorOf(const std::vector<std::byte>& image) {
  try {
    SafetensorsFile::FromBytes(image, "bad.safetensors");
  } catch (const ModelError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("safetensors: write then read", "[safetensors]") {
  TempDir dir;
  const std::vector<float> a = {1, 2, 3, 4, 5, 6};
  const std::vector<float> b = {-1.5f};
  const std::vector<uint16_t> c = {0x3f80, 0x4000};  // bf16 1.0, 2.0
  const std::vector<TensorBlob> blobs = {
      {"a", Dtype::kF32, {2, 3}, Bytes(a)},
      {"b", Dtype::kF32, {}, Bytes(b)},
      {"c", Dtype::kBF16, {2}, {reinterpret_cast<const std::byte*>(c.data()), 4}},
      {"empty", Dtype::kF16, {0, 4}, {}},
  };
  rl::model::WriteSafetensors(dir / "x.safetensors", blobs, {{"format", "pt"}});
  const SafetensorsFile file = SafetensorsFile::Open(dir / "x.safetensors");
  REQUIRE(file.tensors().size() == 4);
  CHECK(file.metadata().at("format") == "pt");
  const auto& ta = file.Get("a");
  CHECK(ta.dtype == Dtype::kF32);
  CHECK(ta.shape == std::vector<int64_t>{2, 3});
  REQUIRE(ta.bytes.size() == 24);
  CHECK(std::memcmp(ta.bytes.data(), a.data(), 24) == 0);
  CHECK(file.Get("b").shape.empty());
  CHECK(file.Get("b").numel() == 1);
  CHECK(file.Get("c").dtype == Dtype::kBF16);
  CHECK(file.Get("empty").bytes.empty());
  CHECK(file.Find("missing") == nullptr);
  CHECK_THROWS_WITH(file.Get("missing"), Contains("missing") && Contains("x.safetensors"));
  // The data buffer starts 8-byte aligned.
  std::ifstream in(dir / "x.safetensors", std::ios::binary);
  uint64_t header_len = 0;
  in.read(reinterpret_cast<char*>(&header_len), 8);
  CHECK((8 + header_len) % 8 == 0);
}

TEST_CASE("safetensors: writer refuses inconsistent input", "[safetensors]") {
  TempDir dir;
  const std::vector<float> a = {1, 2, 3};
  const std::vector<TensorBlob> wrong_size = {{"a", Dtype::kF32, {2, 2}, Bytes(a)}};
  CHECK_THROWS_WITH(rl::model::WriteSafetensors(dir / "x.safetensors", wrong_size),
                    Contains("'a'") && Contains("12 bytes"));
  const std::vector<TensorBlob> twice = {{"a", Dtype::kF32, {3}, Bytes(a)},
                                         {"a", Dtype::kF32, {3}, Bytes(a)}};
  CHECK_THROWS_WITH(rl::model::WriteSafetensors(dir / "y.safetensors", twice), Contains("twice"));
  CHECK_FALSE(std::filesystem::exists(dir / "x.safetensors"));
}

TEST_CASE("safetensors: a file without tensors or metadata round-trips", "[safetensors]") {
  // Found by tests/fuzz/safetensors_fuzz.cpp: the writer's header was JSON null, not {}.
  TempDir dir;
  rl::model::WriteSafetensors(dir / "empty.safetensors", {});
  const SafetensorsFile file = SafetensorsFile::Open(dir / "empty.safetensors");
  CHECK(file.tensors().empty());
  CHECK(file.metadata().empty());
}

TEST_CASE("safetensors: header padded with spaces is valid", "[safetensors]") {
  const std::string h =
      R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})" + std::string(5, ' ');
  CHECK(ErrorOf(Image(h, 8)).empty());
}

TEST_CASE("safetensors: damaged files are refused clearly", "[safetensors]") {
  const std::string w = R"("w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
  const std::string v = R"("v":{"dtype":"F32","shape":[1],"data_offsets":[8,12]})";

  SECTION("too small for the length") {
    CHECK_THAT(ErrorOf(std::vector<std::byte>(5)),
               Contains("bad.safetensors") && Contains("too small"));
  }
  SECTION("header length beyond the file") {
    CHECK_THAT(ErrorOf(Image("{" + w + "}", 8, 1000)), Contains("past the end"));
  }
  SECTION("absurd header length") {
    CHECK_THAT(ErrorOf(Image("{" + w + "}", 8, uint64_t{1} << 62)), Contains("100 MB"));
  }
  SECTION("not JSON") {
    CHECK_THAT(ErrorOf(Image("{\"w\": [1, 2", 0)), Contains("not valid JSON"));
  }
  SECTION("not an object") { CHECK_THAT(ErrorOf(Image("[1,2]", 0)), Contains("start with '{'")); }
  SECTION("truncated data") {
    CHECK_THAT(ErrorOf(Image("{" + w + "," + v + "}", 10)),
               Contains("tensor 'v'") && Contains("truncated"));
  }
  SECTION("trailing bytes") { CHECK_THAT(ErrorOf(Image("{" + w + "}", 12)), Contains("trailing")); }
  SECTION("overlapping tensors") {
    const std::string u = R"("u":{"dtype":"F32","shape":[2],"data_offsets":[4,12]})";
    CHECK_THAT(ErrorOf(Image("{" + w + "," + u + "}", 12)),
               Contains("tensor 'u'") && Contains("overlap"));
  }
  SECTION("gap between tensors") {
    const std::string u = R"("u":{"dtype":"F32","shape":[1],"data_offsets":[12,16]})";
    CHECK_THAT(ErrorOf(Image("{" + w + "," + u + "}", 16)),
               Contains("tensor 'u'") && Contains("gap"));
  }
  SECTION("shape that lies about the byte length") {
    const std::string lie = R"("w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]})";
    CHECK_THAT(ErrorOf(Image("{" + lie + "}", 8)), Contains("tensor 'w'") && Contains("needs 12"));
  }
  SECTION("end before begin") {
    const std::string lie = R"("w":{"dtype":"F32","shape":[0],"data_offsets":[8,0]})";
    CHECK_THAT(ErrorOf(Image("{" + lie + "}", 8)),
               Contains("tensor 'w'") && Contains("before begin"));
  }
  SECTION("shape overflow") {
    const std::string lie =
        R"("w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]})";
    CHECK_THAT(ErrorOf(Image("{" + lie + "}", 8)), Contains("tensor 'w'") && Contains("overflow"));
  }
  SECTION("negative dimension") {
    const std::string lie = R"("w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]})";
    CHECK_THAT(ErrorOf(Image("{" + lie + "}", 8)),
               Contains("tensor 'w'") && Contains("non-negative"));
  }
  SECTION("unsupported dtype named") {
    const std::string i64 = R"("ids":{"dtype":"I64","shape":[1],"data_offsets":[0,8]})";
    CHECK_THAT(ErrorOf(Image("{" + i64 + "}", 8)), Contains("tensor 'ids'") && Contains("'I64'"));
  }
  SECTION("missing data_offsets") {
    const std::string m = R"("w":{"dtype":"F32","shape":[2]})";
    CHECK_THAT(ErrorOf(Image("{" + m + "}", 8)),
               Contains("tensor 'w'") && Contains("data_offsets"));
  }
  SECTION("duplicate names") {
    CHECK_THAT(ErrorOf(Image("{" + w + "," + w + "}", 8)),
               Contains("tensor 'w'") && Contains("twice"));
  }
  SECTION("a header nested a million levels deep is refused, not a stack overflow") {
    // Found while writing tests/fuzz/safetensors_fuzz.cpp (libFuzzer's inputs are too short
    // to reach it): the error message printed the nested value with a recursive dump.
    const std::string deep = std::string(1'000'000, '[') + std::string(1'000'000, ']');
    const std::string lie = R"("w":{"dtype":"F32","shape":[)" + deep + R"(],"data_offsets":[0,0]})";
    CHECK_THAT(ErrorOf(Image("{" + lie + "}", 0)), Contains("nested"));
    CHECK_THAT(ErrorOf(Image(R"({"__metadata__":{"k":)" + deep + "}}", 0)), Contains("nested"));
  }
  SECTION("metadata must be strings") {
    CHECK_THAT(ErrorOf(Image(R"({"__metadata__":{"n":1},)" + w + "}", 8)),
               Contains("__metadata__"));
  }
}

TEST_CASE("safetensors: every truncation of a valid file is refused", "[safetensors]") {
  TempDir dir;
  const std::vector<float> a = {1, 2, 3, 4};
  const std::vector<TensorBlob> blobs = {{"a", Dtype::kF32, {4}, Bytes(a)},
                                         {"b", Dtype::kF32, {2}, Bytes(a).subspan(0, 8)}};
  rl::model::WriteSafetensors(dir / "x.safetensors", blobs);
  std::ifstream in(dir / "x.safetensors", std::ios::binary);
  std::vector<char> raw((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  for (size_t n = 0; n < raw.size(); ++n) {
    const std::vector<std::byte> cut(reinterpret_cast<std::byte*>(raw.data()),
                                     reinterpret_cast<std::byte*>(raw.data()) + n);
    INFO("truncated to " << n << " bytes");
    CHECK_FALSE(ErrorOf(cut).empty());
  }
  // Through Open (mmap) as well.
  std::filesystem::resize_file(dir / "x.safetensors", raw.size() - 3);
  CHECK_THROWS_WITH(SafetensorsFile::Open(dir / "x.safetensors"),
                    Contains("x.safetensors") && Contains("tensor 'b'"));
  CHECK_THROWS_WITH(SafetensorsFile::Open(dir / "absent.safetensors"), Contains("cannot open"));
}

TEST_CASE("safetensors: sharded checkpoints", "[safetensors]") {
  TempDir dir;
  const std::vector<float> a = {1, 2}, b = {3, 4, 5};
  const std::vector<TensorBlob> shard1 = {{"a", Dtype::kF32, {2}, Bytes(a)}};
  const std::vector<TensorBlob> shard2 = {{"b", Dtype::kF32, {3}, Bytes(b)}};
  rl::model::WriteSafetensors(dir / "model-00001-of-00002.safetensors", shard1);
  rl::model::WriteSafetensors(dir / "model-00002-of-00002.safetensors", shard2);
  auto write_index = [&](const nlohmann::json& weight_map) {
    std::ofstream(dir / "model.safetensors.index.json")
        << nlohmann::json{{"metadata", {{"total_size", 20}}}, {"weight_map", weight_map}}.dump();
  };

  write_index(
      {{"a", "model-00001-of-00002.safetensors"}, {"b", "model-00002-of-00002.safetensors"}});
  const SafetensorsCheckpoint ckpt = SafetensorsCheckpoint::OpenDirectory(dir.str());
  CHECK(ckpt.names() == std::vector<std::string>{"a", "b"});
  CHECK(ckpt.Get("b").shape == std::vector<int64_t>{3});
  CHECK(std::memcmp(ckpt.Get("b").bytes.data(), b.data(), 12) == 0);
  CHECK_THAT(ckpt.FileOf("b"), Contains("model-00002-of-00002"));
  CHECK_THROWS_WITH(ckpt.Get("c"), Contains("'c'") && Contains("missing"));

  SECTION("weight_map names a tensor its shard lacks") {
    write_index(
        {{"a", "model-00002-of-00002.safetensors"}, {"b", "model-00002-of-00002.safetensors"}});
    CHECK_THROWS_WITH(SafetensorsCheckpoint::OpenDirectory(dir.str()),
                      Contains("'a'") && Contains("does not contain"));
  }
  SECTION("a shard tensor that weight_map does not list") {
    write_index({{"a", "model-00001-of-00002.safetensors"}});
    rl::model::WriteSafetensors(dir / "model-00001-of-00002.safetensors",
                                std::vector<TensorBlob>{shard1[0], shard2[0]});
    CHECK_THROWS_WITH(SafetensorsCheckpoint::OpenDirectory(dir.str()),
                      Contains("'b'") && Contains("not mapped"));
  }
  SECTION("shard paths may not leave the directory") {
    write_index({{"a", "../model-00001-of-00002.safetensors"}});
    CHECK_THROWS_WITH(SafetensorsCheckpoint::OpenDirectory(dir.str()), Contains("plain file name"));
  }
  SECTION("missing shard file") {
    write_index({{"a", "model-00003-of-00002.safetensors"}});
    CHECK_THROWS_WITH(SafetensorsCheckpoint::OpenDirectory(dir.str()),
                      Contains("model-00003-of-00002") && Contains("cannot open"));
  }
  SECTION("index without weight_map") {
    std::ofstream(dir / "model.safetensors.index.json") << "{\"metadata\": {}}";
    CHECK_THROWS_WITH(SafetensorsCheckpoint::OpenDirectory(dir.str()), Contains("weight_map"));
  }
  SECTION("no checkpoint at all") {
    std::filesystem::remove(dir / "model.safetensors.index.json");
    CHECK_THROWS_WITH(SafetensorsCheckpoint::OpenDirectory(dir.str()), Contains("neither"));
  }
}
