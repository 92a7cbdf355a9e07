// Byte-level BPE tokenizer read from a Hugging Face `tokenizer.json` (Qwen2/Qwen2.5/Qwen3 and the
// DeepSeek-R1-Distill-Qwen models, GPT-2, Llama 3/3.1/3.2, DeepSeek-V3/R1: the tests check all
// of these against Hugging Face's own library), and a small trainer that writes such a file.
//
// Loading:
//
//   std::string error;
//   std::unique_ptr<rl::text::Tokenizer> tok =
//       rl::text::Tokenizer::FromFile("Qwen2.5-0.5B-Instruct/tokenizer.json", &error);
//   if (!tok) { spdlog::error("{}", error); return 1; }   // e.g. "...: model.type: ..."
//
// Encoding and decoding:
//
//   std::vector<int32_t> ids = tok->Encode("<|im_start|>user\nHello<|im_end|>");
//   // Added tokens ("<|im_start|>") are matched first, longest first, on the raw text; the rest
//   // is normalised (NFC when the file asks for it), split by the pre-tokenizer's regex and
//   // merged by BPE. Nothing is prepended or appended (no BOS/EOS).
//   std::string text = tok->Decode(ids);                                 // == the input
//   std::string bare = tok->Decode(ids, /*skip_special_tokens=*/true);   // "user\nHello"
//
// Streaming (a token may end in the middle of a UTF-8 character):
//
//   rl::text::StreamDecoder stream(*tok, /*skip_special_tokens=*/true);
//   for (int32_t id : generated) std::cout << stream.Push(id);
//   std::cout << stream.Flush();
//
// What a tokenizer.json must contain (anything else is refused with an error naming the field):
//   model:         type "BPE" (vocab + merges, merges as "a b" strings or ["a", "b"] pairs),
//                  no dropout, no continuing_subword_prefix / end_of_word_suffix, no byte_fallback;
//                  every one of the 256 byte symbols in the vocabulary.
//   normalizer:    null, NFC, NFD, NFKC, NFKD, or a Sequence of those.
//   pre_tokenizer: ByteLevel, or a Sequence of Split (Regex or String pattern, behavior
//                  "Isolated", not inverted) and ByteLevel.
//   decoder:       ByteLevel (alone or as the only member of a Sequence).
//   added_tokens:  matched on the raw text (also those marked "normalized"); lstrip/rstrip are
//                  honoured, single_word is refused.
// The post_processor is not applied: Encode never adds tokens (Llama 3.1's TemplateProcessing
// would prepend <|begin_of_text|>; the chat templates write it themselves, and transformers'
// apply_chat_template does not add it either).
//
// Regexes run on PCRE2 in UTF + UCP mode, with `\s` and `\S` read as Unicode White_Space (what
// Hugging Face's Oniguruma does). Invalid UTF-8 in Encode's input is not an error: those bytes
// are left unnormalised and encoded as byte tokens, so nothing is lost (the TokenBytes of the
// ids concatenate back to the normalised input, and Decode(Encode(s)) == s for valid UTF-8 that
// the normaliser leaves unchanged).
//
// Errors: loading returns nullptr with *error naming the file and field; Encode and Decode
// accept any input. The rest of rl/text throws std::invalid_argument for a caller's mistake
// (an empty conversation, a bad trainer setting).
//
// Concurrency: a Tokenizer is immutable after loading and safe for concurrent use by many
// threads (its BPE cache is per call). A StreamDecoder belongs to one thread.
#ifndef RL_TEXT_TOKENIZER_H_
#define RL_TEXT_TOKENIZER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace rl::text {

class Tokenizer {
 public:
  // Reads and validates a tokenizer.json. On failure returns nullptr and sets *error (when not
  // null) to a message that names the file and the offending field.
  static std::unique_ptr<Tokenizer> FromFile(const std::string& path, std::string* error);
  // Same for an already parsed document.
  static std::unique_ptr<Tokenizer> FromJson(const nlohmann::json& j, std::string* error);

  ~Tokenizer();
  // Copying would duplicate a vocabulary of up to hundreds of thousands of entries; share it.
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  // Token ids of `text`: added tokens recognised, nothing prepended or appended.
  std::vector<int32_t> Encode(std::string_view text) const;

  // The text of `ids`; added tokens decode to their content. Special added tokens are dropped
  // when skip_special_tokens. Ids that name no token (e.g. the padding rows of a model's
  // embedding beyond the tokenizer's vocabulary) decode to nothing, as in Hugging Face. Bytes
  // that are not valid UTF-8 become U+FFFD (one per maximal invalid subsequence, as there).
  std::string Decode(std::span<const int32_t> ids, bool skip_special_tokens = false) const;

  // The id of a token written as in tokenizer.json ("Ġthe", "<|im_end|>"), if any.
  std::optional<int32_t> TokenToId(std::string_view token) const;

  // The raw bytes a token decodes to ("Ġthe" -> " the"); empty for an id that names no token.
  // May end in the middle of a UTF-8 character.
  std::string_view TokenBytes(int32_t id) const;

  // One past the largest token id, added tokens included.
  int32_t vocab_size() const;

  // True for added tokens marked "special" (<|endoftext|>, <|im_start|>, <|im_end|>, ...).
  bool IsSpecial(int32_t id) const;

 private:
  struct Impl;
  explicit Tokenizer(std::unique_ptr<const Impl> impl);
  std::unique_ptr<const Impl> impl_;
};

// Incremental decoding for streamed generation: Push returns the text that became complete with
// this token and holds back a trailing incomplete UTF-8 character until the next token
// completes it. The concatenation of every Push and the final Flush equals
// tokenizer.Decode(all ids, skip_special_tokens). The tokenizer must outlive the decoder.
class StreamDecoder {
 public:
  StreamDecoder(const Tokenizer& tokenizer, bool skip_special_tokens);
  std::string Push(int32_t id);
  // Returns what was held back (an incomplete character becomes U+FFFD) and resets.
  std::string Flush();

 private:
  const Tokenizer& tokenizer_;
  bool skip_special_tokens_;
  std::string pending_;  // at most 3 bytes: the start of an unfinished character
};

// Trains a byte-level BPE on `corpus` with the Qwen2 pre-tokenizer (NFC, Qwen2 split regex,
// ByteLevel) and returns a tokenizer.json that Tokenizer::FromJson and Hugging Face
// transformers both load. vocab_size counts everything: the 256 byte tokens, the learned
// merges and the special tokens (appended last as special added tokens, in the given order).
// Training stops early when no pair occurs any more. Occurrences of the special tokens in the
// corpus are cut out before counting. Deterministic: ties between equally frequent pairs go to
// the pair of smaller token ids. Throws std::invalid_argument when vocab_size is smaller than
// 256 + special_tokens.size() or a special token is empty or repeated.
nlohmann::json TrainByteLevelBpe(std::span<const std::string> corpus, int32_t vocab_size,
                                 std::span<const std::string> special_tokens);

}  // namespace rl::text

#endif  // RL_TEXT_TOKENIZER_H_
