// The shared small jobs of common/: names, thread counts, random streams, JSON files, UTF-8.
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include <catch2/catch.hpp>

#include "common/blas_kernels.h"
#include "common/config_yaml.h"
#include "common/json_file.h"
#include "common/names.h"
#include "tests/support/ports.h"
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

TEST_CASE("did you mean: the nearest name and the whole list", "[common]") {
  const std::vector<std::string> keys = {"learning_rate", "beta"};
  CHECK(JoinNames(keys) == "learning_rate, beta");
  CHECK(DidYouMean("lerning_rate", keys, "valid keys") ==
        "did you mean 'learning_rate'? (valid keys: learning_rate, beta)");
  const std::vector<std::string_view> views = {"format.tags", "format.boxed"};
  CHECK(DidYouMean("format.box", views, "known") ==
        "did you mean 'format.boxed'? (known: format.tags, format.boxed)");
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

TEST_CASE("a derived seed depends on the seed, the purpose and every index", "[common]") {
  static_assert(DeriveSeed(1, "eval") == DeriveSeed(1, "eval"));
  CHECK(DeriveSeed(1, "eval") != DeriveSeed(2, "eval"));
  CHECK(DeriveSeed(1, "eval") != DeriveSeed(1, "task"));
  CHECK(DeriveSeed(1, "rollout", {2, 0}) != DeriveSeed(1, "rollout", {0, 2}));
  CHECK(DeriveSeed(1, "rollout", {0}) != DeriveSeed(1, "rollout"));
  // Pinned: a saved run resumes on the same streams with a later build.
  CHECK(DeriveSeed(42, "rollout", {3, 1}) == 1003946307042186536ULL);
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

// Aliases of aliases: 500 bytes that read as 387 million values (a reward spec of this shape
// kept `rl score` converting it until it ran out of memory). Refused while counting.
TEST_CASE("a YAML document that expands past its bound through aliases is refused", "[common]") {
  std::string text = "l0: &l0 [x, x, x, x, x, x, x, x, x]\n";
  for (int i = 1; i < 9; ++i) {
    const std::string index = std::to_string(i), below = std::to_string(i - 1);
    text.append("l").append(index).append(": &l").append(index).append(" [*l").append(below);
    for (int k = 1; k < 9; ++k) text.append(", *l").append(below);
    text.append("]\n");
  }
  CHECK_THROWS_WITH(ParseYamlDocument(text, "bomb.yaml"),
                    "bomb.yaml: the document has more than 100000 values once aliases are expanded "
                    "(aliases of aliases?)");
  text.resize(text.find("l5:"));  // 74,738 values: within the bound
  CHECK(ParseYamlDocument(text, "fine.yaml")["l4"].size() == 9);
}

TEST_CASE("FreeLoopbackPort: below the ephemeral range, and free", "[ports]") {
  int ephemeral_start = 32768, ephemeral_end = 60999;
  std::ifstream("/proc/sys/net/ipv4/ip_local_port_range") >> ephemeral_start >> ephemeral_end;
  for (int i = 0; i < 20; ++i) {
    const int port = rl::testing::FreeLoopbackPort();
    CHECK(port >= 1024);
    CHECK(port < ephemeral_start);
  }
}

namespace {

// A small schema for the command-line overrides of a configuration.
struct OverrideSample {
  int64_t steps = 1;
  double learning_rate = 0.1;
  int64_t lora_r = 0;
  StringList stop_strings;
};

template <class V>
void VisitOverrideSample(V& v, OverrideSample& s) {
  v.Section("grpo", [&] {
    v.Field("steps", s.steps, AtLeast(1));
    v.Field("learning_rate", s.learning_rate);
    v.Section("lora", [&] { v.Field("r", s.lora_r); });
  });
  v.Section("rollout", [&] { v.Field("stop_strings", s.stop_strings); });
}

OverrideSample ReadWithOverrides(const std::string& text, const std::vector<std::string>& overrides) {
  std::vector<YamlOverride> parsed;
  for (const std::string& o : overrides) parsed.push_back(ParseYamlOverride(o));
  YamlReader reader(ParseYamlConfig(text, "run.yaml"), "run.yaml", parsed);
  OverrideSample sample;
  VisitOverrideSample(reader, sample);
  reader.CheckUnknownKeys();
  return sample;
}

}  // namespace

TEST_CASE("command-line overrides: values over the file's, read by the same schema", "[common][config]") {
  const std::string file = "grpo: {steps: 5, learning_rate: 0.5}\n";
  OverrideSample s = ReadWithOverrides(file, {"grpo.steps=3", "rollout.stop_strings=[a, 'b c']", "grpo.lora.r=16"});
  CHECK(s.steps == 3);
  CHECK(s.learning_rate == 0.5);  // untouched keys keep the file's value
  CHECK(s.stop_strings == StringList{"a", "b c"});
  CHECK(s.lora_r == 16);  // sections the file lacks are created
  s = ReadWithOverrides(file, {"grpo.steps=3", "grpo.steps=4", "grpo.learning_rate="});
  CHECK(s.steps == 4);                // the later override of a key wins
  CHECK(s.learning_rate == 0.1);      // null: the field's default
  CHECK(ReadWithOverrides("", {"grpo={steps: 7}"}).steps == 7);  // no file content; a flow mapping
}

TEST_CASE("command-line overrides: errors name the override, not a line of the file", "[common][config]") {
  const std::string file = "grpo:\n  steps: 2\n";
  CHECK_THROWS_WITH(ReadWithOverrides(file, {"grpo.lerning_rate=1e-3"}),
                    "command-line override grpo.lerning_rate=1e-3: grpo.lerning_rate: unknown key; did you mean "
                    "'learning_rate'? (valid keys: steps, learning_rate, lora)");
  CHECK_THROWS_WITH(ReadWithOverrides(file, {"grpo.steps=0"}),
                    "command-line override grpo.steps=0: grpo.steps: value 0 out of range: expected at least 1");
  CHECK_THROWS_WITH(ReadWithOverrides(file, {"grpo.steps=many"}),
                    "command-line override grpo.steps=many: grpo.steps: expected an integer, got 'many'");
  CHECK_THROWS_WITH(ReadWithOverrides(file, {"grpoo.steps=3"}),
                    Catch::StartsWith("command-line override grpoo.steps=3: grpoo: unknown key; did you mean 'grpo'?"));
  CHECK_THROWS_WITH(ReadWithOverrides(file, {"grpo.steps.x=1"}),
                    "command-line override grpo.steps.x=1: grpo.steps: holds a value in run.yaml, "
                    "not a section with keys");
  // An error in the file itself still names its line.
  CHECK_THROWS_WITH(ReadWithOverrides("grpo:\n  steps: 0\n", {"grpo.learning_rate=0.2"}),
                    "run.yaml:2: grpo.steps: value 0 out of range: expected at least 1");
}

TEST_CASE("command-line overrides: malformed ones are refused as written", "[common][config]") {
  CHECK_THROWS_WITH(ParseYamlOverride("grpo.steps"),
                    "command-line override grpo.steps: expected KEY=VALUE with a dotted key, e.g. grpo.steps=3");
  CHECK_THROWS_WITH(ParseYamlOverride("grpo..steps=1"), Catch::Contains("expected KEY=VALUE"));
  CHECK_THROWS_WITH(ParseYamlOverride("=1"), Catch::Contains("expected KEY=VALUE"));
  CHECK_THROWS_WITH(ParseYamlOverride("rollout.stop_strings=[a"),
                    Catch::StartsWith("command-line override rollout.stop_strings=[a: rollout.stop_strings: "
                                      "not valid YAML"));
  const YamlOverride o = ParseYamlOverride("run.output_dir=/tmp/x=y");  // the first '=' splits
  CHECK(o.path == std::vector<std::string>{"run", "output_dir"});
  CHECK(o.value.Scalar() == "/tmp/x=y");
}

TEST_CASE("OpenBLAS's kernels: only a choice older than AVX2 on an AVX2 CPU is replaced", "[common]") {
  const CpuVectorUnits none, avx2{.avx2_fma = true}, avx512{.avx2_fma = true, .avx512 = true};
  CHECK(BetterBlasKernels("Prescott", avx512) == "SkylakeX");  // OpenBLAS 0.3.21 on an unknown CPU
  CHECK(BetterBlasKernels("Prescott", avx2) == "Haswell");
  CHECK(BetterBlasKernels("Sandybridge", avx2) == "Haswell");
  CHECK(BetterBlasKernels("Prescott", none).empty());  // a CPU without AVX2 keeps them
  CHECK(BetterBlasKernels("SkylakeX", avx512).empty());
  CHECK(BetterBlasKernels("Haswell", avx512).empty());  // a choice with AVX2 is OpenBLAS's to make
  CHECK(BetterBlasKernels("Zen", avx512).empty());
  CHECK(BetterBlasKernels("", avx512).empty());  // no OpenBLAS in the process
}
