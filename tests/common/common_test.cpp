// The shared small jobs of common/: names, thread counts, random streams, JSON files, UTF-8.
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include <catch2/catch.hpp>

#include "common/json_file.h"
#include "common/names.h"
#include "common/random.h"
#include "common/threads.h"
#include "common/utf8.h"

using namespace rl::common;

TEST_CASE("edit distance", "[common]") {
  CHECK(EditDistance("kitten", "sitting") == 3);
  CHECK(EditDistance("", "abc") == 3);
  CHECK(EditDistance("beta", "beta") == 0);
}

TEST_CASE("the nearest name, first of equals", "[common]") {
  const std::vector<std::string> keys = {"learning_rate", "beta", "betas"};
  CHECK(NearestName("lerning_rate", keys) == "learning_rate");
  CHECK(NearestName("bet", keys) == "beta");
  const std::vector<std::string_view> none;
  CHECK(NearestName("x", none).empty());
}

TEST_CASE("0 threads means all cores", "[common]") {
  CHECK(ThreadCount(3) == 3);
  CHECK(ThreadCount(0) >= 1);
  CHECK(ThreadCount(-1) == ThreadCount(0));
}

TEST_CASE("SplitMix64 is the published generator", "[common]") {
  // Reference values of Vigna's splitmix64.c seeded with 0.
  SplitMix64 rng(0);
  CHECK(rng.Next() == 0xe220a8397b1dcdafULL);
  CHECK(rng.Next() == 0x6e789e6aa1b965f4ULL);
  CHECK(SplitMix64Hash(0) == 0xe220a8397b1dcdafULL);
  const double u = rng.Uniform();
  CHECK((u >= 0.0 && u < 1.0));
}

TEST_CASE("a JSON file: parsed, or an error naming it", "[common]") {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / "rl_common_test";
  std::filesystem::create_directories(dir);
  const std::string good = (dir / "good.json").string(), bad = (dir / "bad.json").string();
  std::ofstream(good) << R"({"a": [1, 2]})";
  std::ofstream(bad) << R"({"a": )";
  std::string error;
  auto j = ReadJsonFile(good, &error);
  REQUIRE(j.has_value());
  CHECK((*j)["a"][1] == 2);
  CHECK_FALSE(ReadJsonFile(bad, &error).has_value());
  CHECK_THAT(error, Catch::StartsWith("'" + bad + "': not valid JSON"));
  CHECK_FALSE(ReadJsonFile((dir / "absent.json").string(), &error).has_value());
  CHECK_THAT(error, Catch::EndsWith("absent.json': cannot open"));
  std::filesystem::remove_all(dir);
}

TEST_CASE("UTF-8 is well-formed by the standard's table", "[common]") {
  CHECK(utf8::IsValid(""));
  CHECK(utf8::IsValid("x \xC3\x97 \xE2\x88\x9A \xF0\x9F\x99\x82"));  // U+00D7 U+221A U+1F642
  CHECK_FALSE(utf8::IsValid("\xC0\x80"));          // a 2-byte overlong
  CHECK_FALSE(utf8::IsValid("\xE0\x80\xB3"));      // a 3-byte overlong
  CHECK_FALSE(utf8::IsValid("\xED\xA0\x80"));      // a surrogate
  CHECK_FALSE(utf8::IsValid("\xF4\x90\x80\x80"));  // above U+10FFFF
  CHECK_FALSE(utf8::IsValid("ok\xE2\x88"));         // cut short
  const utf8::Scan cut = utf8::ScanAt("\xE2\x88", 0);
  CHECK(cut.length == 2);
  CHECK_FALSE(cut.complete);
}
