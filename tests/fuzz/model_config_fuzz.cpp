// The readers of a checkpoint's JSON files on arbitrary text: config.json (DecoderConfig),
// generation_config.json (GenerationConfig) and a LoRA adapter's adapter_config.json
// (LoraConfig), chosen by the first byte ('0', '1', '2'); the rest is the file.
// Promises checked (rl/model/config.h): a bad file is a ModelError, never a crash or another
// exception; an accepted config is valid, and written back with ToJson it reads the same.
#include <cstddef>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "rl/model/config.h"
#include "tests/fuzz/fuzz_input.h"

namespace {

using rl::fuzz::Require;

// Reads `j` with T::FromJson; an accepted value must read back from its own ToJson().
template <class T, class Check>
void ReadAndRoundTrip(const nlohmann::json& j, Check check) {
  T value;
  try {
    value = T::FromJson(j, "fuzz.json");
  } catch (const rl::model::ModelError&) {
    return;  // a refused file: what the reader is for
  }
  check(value);
  T again = T::FromJson(value.ToJson(), "written.json");  // throws (and fails) if not readable
  Require(again.ToJson() == value.ToJson(), "an accepted config reads back the same from ToJson");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  rl::fuzz::FuzzInput input(data, size);
  const uint8_t selector = input.Byte();
  const std::string text(input.Rest().value_or(""));
  const nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return 0;  // ReadJsonFile refuses it before any reader sees it
  switch (selector % 3) {
    case 0:
      ReadAndRoundTrip<rl::model::DecoderConfig>(j, [](const rl::model::DecoderConfig& c) {
        c.Validate("accepted");  // throws (and fails) when FromJson let an invalid shape through
      });
      break;
    case 1:
      ReadAndRoundTrip<rl::model::GenerationConfig>(j, [](const rl::model::GenerationConfig&) {});
      break;
    default:
      ReadAndRoundTrip<rl::model::LoraConfig>(j, [](const rl::model::LoraConfig& c) {
        c.Validate("accepted");
        Require(c.enabled() && c.scale() > 0, "an accepted adapter has a rank and a positive scale");
      });
      break;
  }
  return 0;
}
