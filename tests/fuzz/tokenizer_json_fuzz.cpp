// Loading arbitrary tokenizer.json documents (the whole input is the file).
// Promises checked (rl/text/tokenizer.h): FromJson refuses a bad file with a message and never
// crashes or throws; a tokenizer it accepts encodes and decodes without either, and Encode
// answers ids below vocab_size().
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "rl/text/tokenizer.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using rl::fuzz::Require;
  const nlohmann::json j = nlohmann::json::parse(data, data + size, nullptr,
                                                 /*allow_exceptions=*/false);
  if (j.is_discarded()) return 0;
  std::string error;
  const std::unique_ptr<rl::text::Tokenizer> t = rl::text::Tokenizer::FromJson(j, &error);
  if (t == nullptr) {
    Require(!error.empty(), "a refused tokenizer.json comes with a message");
    return 0;
  }
  for (const char* text : {"Hello world, 1905!", "  <|im_start|>user\n\xC3\xA9\xCC\x81\xFF<s>"}) {
    const std::vector<int32_t> ids = t->Encode(text);
    for (int32_t id : ids) Require(id >= 0 && id < t->vocab_size(), "Encode answers known ids");
    (void)t->Decode(ids);
    (void)t->Decode(ids, /*skip_special_tokens=*/true);
  }
  const std::vector<int32_t> every = {0, 1, 255, 256, t->vocab_size() - 1, t->vocab_size(), -1};
  (void)t->Decode(every);
  return 0;
}
