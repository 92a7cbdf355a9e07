// The training configuration in YAML (the whole input is the file).
// Promises checked (trainer/config.h): a bad config is a ConfigError naming the origin, never a
// crash or another exception; for an accepted config c, ParseTrainConfig(ToYaml(c)) gives
// back c (compared through ToYaml, which prints every field).
#include <cstddef>
#include <cstdint>
#include <string>

#include "tests/fuzz/fuzz_input.h"
#include "trainer/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using rl::fuzz::Require;
  using rl::trainer::ConfigError;
  using rl::trainer::TrainConfig;
  const std::string_view yaml(reinterpret_cast<const char*>(data), size);
  TrainConfig config;
  try {
    config = rl::trainer::ParseTrainConfig(yaml, "fuzz.yaml");
  } catch (const ConfigError& e) {
    Require(std::string_view(e.what()).rfind("fuzz.yaml", 0) == 0,
            "a refused config's message starts with its origin");
    return 0;
  }
  const std::string printed = rl::trainer::ToYaml(config);
  TrainConfig again;
  try {
    again = rl::trainer::ParseTrainConfig(printed, "printed.yaml");
  } catch (const ConfigError& e) {
    std::fprintf(stderr, "the printed config is refused: %s\n--- printed:\n%s\n", e.what(),
                 printed.c_str());
    Require(false, "ParseTrainConfig(ToYaml(c)) accepts what ToYaml printed");
  }
  Require(rl::trainer::ToYaml(again) == printed, "ParseTrainConfig(ToYaml(c)) gives back c");
  return 0;
}
