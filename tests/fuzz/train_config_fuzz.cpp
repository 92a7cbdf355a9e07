// The training configuration: a YAML document and the command line's overrides on it
// ("grpo.steps=3", common/config_yaml.h), as `rl train CONFIG.yaml KEY=VALUE ...` reads them.
// Input (tests/fuzz/fuzz_input.h): a selector byte whose value modulo 4 is the number of
// overrides, that many NUL-terminated overrides, then the document:
//   printf '1%s\0%s' 'grpo.steps=3' "$(cat configs/quickstart.yaml)"
// Promises checked (trainer/config.h, common/config_yaml.h): a bad config or override is a
// ConfigError naming its origin (the file, or "command-line override TEXT"), never a crash or
// another exception; for an accepted config c, ParseTrainConfig(ToYaml(c)) gives back c
// (compared through ToYaml, which prints every field), and so does ToYaml(c) with the same
// overrides applied again: an override sets a value, so applying it twice changes nothing.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "tests/fuzz/fuzz_input.h"
#include "trainer/config.h"

namespace {

using rl::fuzz::Require;
using rl::trainer::ConfigError;
using rl::trainer::TrainConfig;

// The printed config `printed`, read back with `overrides`: must be accepted and give `printed`.
void RequireReadBack(const std::string& printed, const std::vector<std::string>& overrides, const char* promise) {
  TrainConfig again;
  try {
    again = rl::trainer::ParseTrainConfig(printed, "printed.yaml", overrides);
  } catch (const ConfigError& e) {
    std::fprintf(stderr, "the printed config is refused: %s\n--- printed:\n%s\n", e.what(), printed.c_str());
    Require(false, promise);
  }
  Require(rl::trainer::ToYaml(again) == printed, promise);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  rl::fuzz::FuzzInput input(data, size);
  std::vector<std::string> overrides;
  for (int n = input.Byte() % 4; n > 0; --n) {
    const auto text = input.Next();
    if (!text) return 0;
    overrides.emplace_back(*text);
  }
  const std::string_view yaml = input.Rest().value_or("");
  TrainConfig config;
  try {
    config = rl::trainer::ParseTrainConfig(yaml, "fuzz.yaml", overrides);
  } catch (const ConfigError& e) {
    const std::string_view message = e.what();
    Require(message.rfind("fuzz.yaml", 0) == 0 || message.rfind("command-line override ", 0) == 0,
            "a refused config's message starts with its origin");
    return 0;
  }
  const std::string printed = rl::trainer::ToYaml(config);
  RequireReadBack(printed, {}, "ParseTrainConfig(ToYaml(c)) gives back c");
  if (!overrides.empty()) {  // without, the same check as the line above
    RequireReadBack(printed, overrides, "ToYaml(c) with c's overrides applied again gives back c");
  }
  return 0;
}
