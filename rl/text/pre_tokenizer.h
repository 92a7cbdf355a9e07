// The pieces of a tokenizer.json that run before BPE (internal to rl_text): the byte-level
// alphabet, the Unicode normaliser and the regex pre-tokenizer. All are immutable after
// construction and safe for concurrent use.
#ifndef RL_TEXT_PRE_TOKENIZER_H_
#define RL_TEXT_PRE_TOKENIZER_H_

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>
#include <unicode/normalizer2.h>

namespace rl::text::internal {

// GPT-2's table that gives each of the 256 bytes a printable character, so that vocabulary
// entries are readable strings ("Ġ" is the byte 0x20).
class ByteLevelAlphabet {
 public:
  static const ByteLevelAlphabet& Get();
  // The UTF-8 of byte b's character.
  const std::string& CharOf(uint8_t b) const { return char_of_[b]; }
  // A byte string written with the alphabet ("Ġthe" for " the").
  std::string Encode(std::string_view bytes) const;
  // The bytes of an alphabet string; nullopt when it holds a character outside the alphabet.
  std::optional<std::string> Decode(std::string_view token) const;
  // The bytes in the order GPT-2 and Qwen2 number them (printable ones first).
  const std::array<uint8_t, 256>& order() const { return order_; }

 private:
  ByteLevelAlphabet();
  std::array<std::string, 256> char_of_;
  std::array<int16_t, 324> byte_of_;  // code point -> byte, -1 when none; all lie below 324
  std::array<uint8_t, 256> order_;
};

// Unicode normalisation as tokenizer.json's "normalizer" asks (NFC for Qwen2). Maximal runs
// of invalid UTF-8 are passed through unchanged.
class Normalizer {
 public:
  // j is the "normalizer" value (null allowed). On failure returns nullptr and sets *error to a
  // message naming the field below `path`.
  static std::unique_ptr<Normalizer> FromJson(const nlohmann::json& j, const std::string& path,
                                              std::string* error);
  std::string Apply(std::string_view text) const;
  bool identity() const { return forms_.empty(); }

 private:
  std::vector<const icu::Normalizer2*> forms_;  // ICU's singletons, applied in order
};

// Splits normalised text into the words that BPE merges inside of.
class PreTokenizer {
 public:
  // j is the "pre_tokenizer" value. It must contain a ByteLevel step. On failure returns
  // nullptr and sets *error to a message naming the field below `path`.
  static std::unique_ptr<PreTokenizer> FromJson(const nlohmann::json& j, const std::string& path,
                                                std::string* error);
  ~PreTokenizer();
  // Appends the words of `text` to *words (raw bytes; never empty).
  void Split(std::string_view text, std::vector<std::string>* words) const;

 private:
  struct Step;
  PreTokenizer();
  std::vector<Step> steps_;
};

// The normaliser and pre-tokenizer of Qwen2's tokenizer.json (NFC; the Qwen2 split regex with
// behaviour Isolated, then ByteLevel without prefix space), used by the trainer.
nlohmann::json Qwen2NormalizerJson();
nlohmann::json Qwen2PreTokenizerJson();

}  // namespace rl::text::internal

#endif  // RL_TEXT_PRE_TOKENIZER_H_
