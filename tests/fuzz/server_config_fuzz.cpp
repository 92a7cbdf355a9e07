// The reward server's configuration in YAML (the whole input is the file).
// Promises checked (rewards/server/server_config.h): LoadServerConfigText and
// ValidateServerConfig answer false with a message on bad input, never a crash or an
// exception; a valid configuration printed by ServerConfigToYaml (`rl serve --print-config`)
// loads back, validates, and prints the same.
#include <cstddef>
#include <cstdint>
#include <string>

#include "rewards/server/server_config.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using rl::fuzz::Require;
  using rl::rewards::server::ServerConfig;
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  ServerConfig config;
  std::string error;
  if (!rl::rewards::server::LoadServerConfigText(text, "fuzz.yaml", "configs", &config, &error)) {
    Require(!error.empty(), "a refused config comes with a message");
    return 0;
  }
  if (!rl::rewards::server::ValidateServerConfig(config, &error)) {
    Require(!error.empty(), "an invalid config comes with a message");
    return 0;
  }
  const std::string printed = rl::rewards::server::ServerConfigToYaml(config);
  ServerConfig again;
  std::string again_error;
  Require(rl::rewards::server::LoadServerConfigText(printed, "printed.yaml", "", &again, &again_error),
          "the printed config loads back");
  Require(rl::rewards::server::ValidateServerConfig(again, &again_error), "the printed config is valid");
  Require(rl::rewards::server::ServerConfigToYaml(again) == printed, "the printed config prints the same");
  return 0;
}
