// The byte-level BPE tokenizer: encoding arbitrary bytes and decoding arbitrary ids, with small
// tokenizers trained at start-up on the strings of tests/fixtures/tokenizer/qwen2.inp.
// Input: selector byte (tokenizer variant, skip_special_tokens) | text | NUL | ids (the rest,
//        two bytes per id, mapped onto [-8, vocab_size + 8) so that unknown ids occur too).
// Promises checked (rl/text/tokenizer.h): nothing crashes or throws; every id Encode answers
// names a token; with no normaliser and no stripping added tokens, the ids' bytes concatenate
// back to the input, and Decode(Encode(s)) == s for valid UTF-8; a StreamDecoder fed one id at
// a time says what Decode says.
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "rl/text/tokenizer.h"
#include "common/utf8.h"
#include "tests/fuzz/fuzz_input.h"

namespace {

using rl::fuzz::Require;
using rl::text::StreamDecoder;
using rl::text::Tokenizer;

// The llama.cpp vocabulary test strings: scripts, whitespace runs, digits, emoji.
std::vector<std::string> FixtureStrings() {
  const std::string path = std::string(RL_TESTS_DIR) + "/fixtures/tokenizer/qwen2.inp";
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "tokenizer_fuzz: cannot read %s\n", path.c_str());
    std::abort();
  }
  std::stringstream text;
  text << in.rdbuf();
  const std::string all = text.str();
  const std::string separator = "\n__ggml_vocab_test__\n";
  std::vector<std::string> strings;
  for (size_t begin = 0; begin <= all.size();) {
    const size_t end = std::min(all.find(separator, begin), all.size());
    strings.push_back(all.substr(begin, end - begin));
    begin = end + separator.size();
  }
  return strings;
}

struct Variant {
  std::unique_ptr<Tokenizer> tokenizer;
  bool lossless;  // no normaliser and no lstrip/rstrip: Encode keeps every byte
};

std::unique_ptr<Tokenizer> Load(const nlohmann::json& j) {
  std::string error;
  std::unique_ptr<Tokenizer> t = Tokenizer::FromJson(j, &error);
  if (t == nullptr) {
    std::fprintf(stderr, "tokenizer_fuzz: a built-in tokenizer is refused: %s\n", error.c_str());
    std::abort();
  }
  return t;
}

// Qwen2's pre-tokenizer and NFC as trained; GPT-2's pre-tokenizer without a normaliser and a
// plain added token; NFKC, a literal Split and added tokens that strip spaces.
std::array<Variant, 3> MakeVariants() {
  const std::vector<std::string> specials = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
  const nlohmann::json trained = rl::text::TrainByteLevelBpe(FixtureStrings(), 600, specials);
  const nlohmann::json byte_level = {
      {"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}};

  const int next_id = trained["added_tokens"].back()["id"].get<int>() + 1;

  nlohmann::json gpt2 = trained;
  gpt2["normalizer"] = nullptr;
  gpt2["pre_tokenizer"] = byte_level;
  gpt2["added_tokens"].push_back(
      {{"id", next_id}, {"content", "<tool>"}, {"special", false}, {"normalized", false}});

  nlohmann::json stripping = trained;
  stripping["normalizer"] = {{"type", "NFKC"}};
  stripping["pre_tokenizer"] = {
      {"type", "Sequence"},
      {"pretokenizers",
       {{{"type", "Split"}, {"pattern", {{"String", " "}}}, {"behavior", "Isolated"}},
        {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"use_regex", false}}}}};
  stripping["added_tokens"].push_back({{"id", next_id},
                                       {"content", "[mask]"},
                                       {"special", false},
                                       {"lstrip", true},
                                       {"rstrip", true}});
  return {Variant{Load(trained), false}, Variant{Load(gpt2), true},
          Variant{Load(stripping), false}};
}

bool ValidUtf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const rl::common::utf8::Scan scan = rl::common::utf8::ScanAt(s, i);
    if (!scan.complete) return false;
    i += scan.length;
  }
  return true;
}

void CheckEncode(const Variant& v, std::string_view text) {
  const Tokenizer& t = *v.tokenizer;
  const std::vector<int32_t> ids = t.Encode(text);
  std::string bytes;
  for (int32_t id : ids) {
    Require(id >= 0 && id < t.vocab_size(), "Encode answers ids of the vocabulary");
    const std::string_view token = t.TokenBytes(id);
    Require(!token.empty(), "every id Encode answers has bytes");
    bytes += token;
  }
  if (v.lossless) {
    Require(bytes == text, "the ids' bytes concatenate back to the input");
    if (ValidUtf8(text)) Require(t.Decode(ids) == text, "Decode(Encode(s)) == s");
  }
  (void)t.TokenToId(text);
}

void CheckDecode(const Tokenizer& t, std::string_view raw, bool skip_special) {
  std::vector<int32_t> ids;
  const auto span = static_cast<uint32_t>(t.vocab_size()) + 16;
  for (size_t i = 0; i + 1 < raw.size(); i += 2) {
    const uint32_t r = static_cast<uint8_t>(raw[i]) | static_cast<uint8_t>(raw[i + 1]) << 8;
    ids.push_back(static_cast<int32_t>(r % span) - 8);
  }
  const std::string decoded = t.Decode(ids, skip_special);
  Require(ValidUtf8(decoded), "Decode answers valid UTF-8");
  StreamDecoder stream(t, skip_special);
  std::string streamed;
  for (int32_t id : ids) streamed += stream.Push(id);
  streamed += stream.Flush();
  Require(streamed == decoded, "StreamDecoder's pieces concatenate to Decode's text");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::array<Variant, 3> variants = MakeVariants();
  rl::fuzz::FuzzInput input(data, size);
  const uint8_t selector = input.Byte();
  const Variant& variant = variants[selector % variants.size()];
  const bool skip_special = (selector / variants.size()) % 2 == 1;
  CheckEncode(variant, input.Next().value_or(""));
  CheckDecode(*variant.tokenizer, input.Rest().value_or(""), skip_special);
  return 0;
}
