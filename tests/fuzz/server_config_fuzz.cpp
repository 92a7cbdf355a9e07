// The reward server's configuration in YAML (the whole input is the file), and the --rewards
// flag's "name=path,..." syntax on the same bytes.
// Promises checked (rewards/server/server_config.h): LoadServerConfigText and
// ValidateServerConfig answer false with a message on bad input, never a crash or an
// exception; a valid configuration printed by ServerConfigToYaml (`rl serve --print-config`)
// loads back, validates, and prints the same.
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "rewards/server/server_config.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using rl::fuzz::Require;
  using rl::server::ServerConfig;
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  std::vector<std::pair<std::string, std::string>> rewards;
  std::string flag_error;
  if (!rl::server::ParseRewardsFlag(text, &rewards, &flag_error)) {
    Require(!flag_error.empty(), "a refused --rewards flag comes with a message");
  }

  ServerConfig config;
  std::string error;
  if (!rl::server::LoadServerConfigText(text, "fuzz.yaml", "configs", &config, &error)) {
    Require(!error.empty(), "a refused config comes with a message");
    return 0;
  }
  if (!rl::server::ValidateServerConfig(config, &error)) {
    Require(!error.empty(), "an invalid config comes with a message");
    return 0;
  }
  const std::string printed = rl::server::ServerConfigToYaml(config);
  ServerConfig again;
  std::string again_error;
  Require(rl::server::LoadServerConfigText(printed, "printed.yaml", "", &again, &again_error),
          "the printed config loads back");
  Require(rl::server::ValidateServerConfig(again, &again_error), "the printed config is valid");
  Require(rl::server::ServerConfigToYaml(again) == printed, "the printed config prints the same");
  return 0;
}
