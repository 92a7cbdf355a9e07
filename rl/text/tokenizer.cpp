#include "rl/text/tokenizer.h"

#include <algorithm>
#include <array>
#include <filesystem>
#include <fstream>
#include <limits>
#include <queue>
#include <sstream>
#include <unordered_map>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>
#include <unicode/uchar.h>

#include "rl/text/pre_tokenizer.h"
#include "common/utf8.h"

namespace rl::text {
namespace {

using internal::ByteLevelAlphabet;

enum class TokenKind : uint8_t { kNone, kVocab, kAdded, kSpecial };

struct AddedToken {
  std::string content;
  int32_t id;
  bool lstrip, rstrip;
};

struct MergeRule {
  int32_t rank;
  int32_t merged;
};

uint64_t PairKey(int32_t left, int32_t right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}

// Words already merged during one Encode call; long texts repeat most of their words. Per call
// so that the tokenizer itself stays immutable.
using WordCache = std::unordered_map<std::string, std::vector<int32_t>>;
constexpr size_t kMaxCachedWordBytes = 64;

struct AddedMatch {
  size_t start, end;  // the span consumed, stripped whitespace included
  int32_t id;
};

bool IsWhitespaceAt(std::string_view s, size_t pos, size_t* length) {
  const common::utf8::Scan scan = common::utf8::ScanAt(s, pos);
  if (!scan.complete) return false;
  *length = scan.length;
  return u_isUWhiteSpace(static_cast<UChar32>(common::utf8::DecodeAt(s, pos, scan.length)));
}

}  // namespace

struct Tokenizer::Impl {
  std::unique_ptr<internal::Normalizer> normalizer;
  std::unique_ptr<internal::PreTokenizer> pre_tokenizer;
  std::vector<std::string> token_bytes;  // by id: raw bytes (added tokens: their content)
  std::vector<TokenKind> token_kind;     // by id
  std::unordered_map<std::string, int32_t> vocab_by_bytes;
  // Vocabulary entries with characters outside the byte-level alphabet: BPE never produces
  // them, but they keep their ids for decoding and TokenToId.
  std::unordered_map<std::string, int32_t> vocab_unmapped;
  std::array<int32_t, 256> byte_ids{};
  std::unordered_map<uint64_t, MergeRule> merges;
  bool ignore_merges = false;
  std::vector<AddedToken> added;  // longest content first
  std::array<std::vector<size_t>, 256> added_by_first_byte;  // indexes into `added`
  std::unordered_map<std::string, int32_t> added_by_content;

  bool LoadOptions(const nlohmann::json& model, std::string* error);
  bool SizeTables(const nlohmann::json& vocab, const nlohmann::json& added, std::string* error);
  bool LoadVocab(const nlohmann::json& vocab, std::string* error);
  bool LoadMerges(const nlohmann::json& merges, std::string* error);
  bool LoadAddedTokens(const nlohmann::json& added, std::string* error);

  std::optional<int32_t> VocabId(std::string_view token) const;
  std::optional<AddedMatch> FindAdded(std::string_view text, size_t from) const;
  void EncodeSegment(std::string_view text, WordCache* cache, std::vector<int32_t>* ids) const;
  void Bpe(std::string_view word, std::vector<int32_t>* ids) const;
};

std::optional<int32_t> Tokenizer::Impl::VocabId(std::string_view token) const {
  if (auto bytes = ByteLevelAlphabet::Get().Decode(token)) {
    auto it = vocab_by_bytes.find(*bytes);
    if (it != vocab_by_bytes.end()) return it->second;
  }
  auto it = vocab_unmapped.find(std::string(token));
  if (it != vocab_unmapped.end()) return it->second;
  return std::nullopt;
}

// Leftmost match, longest at that position (Hugging Face's leftmost-longest rule).
std::optional<AddedMatch> Tokenizer::Impl::FindAdded(std::string_view text, size_t from) const {
  if (added.empty()) return std::nullopt;
  for (size_t pos = from; pos < text.size(); ++pos) {
    for (size_t index : added_by_first_byte[static_cast<uint8_t>(text[pos])]) {
      const AddedToken& token = added[index];
      if (text.compare(pos, token.content.size(), token.content) != 0) continue;
      AddedMatch match{pos, pos + token.content.size(), token.id};
      if (token.lstrip) {
        // Walk back over whole whitespace characters that lie after `from`.
        size_t start = match.start;
        while (start > from) {
          size_t back = start - 1, length = 0;
          while (back > from && (static_cast<uint8_t>(text[back]) & 0xC0) == 0x80) --back;
          if (!IsWhitespaceAt(text, back, &length) || back + length != start) break;
          start = back;
        }
        match.start = start;
      }
      size_t length = 0;
      while (token.rstrip && match.end < text.size() && IsWhitespaceAt(text, match.end, &length)) {
        match.end += length;
      }
      return match;
    }
  }
  return std::nullopt;
}

void Tokenizer::Impl::EncodeSegment(std::string_view text, WordCache* cache,
                                    std::vector<int32_t>* ids) const {
  if (text.empty()) return;
  std::vector<std::string> words;
  if (normalizer->identity()) {
    pre_tokenizer->Split(text, &words);
  } else {
    pre_tokenizer->Split(normalizer->Apply(text), &words);
  }
  for (const std::string& word : words) {
    if (word.size() > kMaxCachedWordBytes) {
      Bpe(word, ids);
      continue;
    }
    auto [it, inserted] = cache->try_emplace(word);
    if (inserted) Bpe(word, &it->second);
    ids->insert(ids->end(), it->second.begin(), it->second.end());
  }
}

// Merges the bytes of `word` by rank, lowest first and leftmost among equals, as Hugging Face's
// BPE model does. O(n log n) in the word length, so long runs (of spaces, say) stay cheap.
void Tokenizer::Impl::Bpe(std::string_view word, std::vector<int32_t>* ids) const {
  if (ignore_merges) {
    auto it = vocab_by_bytes.find(std::string(word));
    if (it != vocab_by_bytes.end()) {
      ids->push_back(it->second);
      return;
    }
  }
  struct Symbol {
    int32_t id, prev, next;
    bool alive;
  };
  struct Candidate {
    int32_t rank, pos, left, right, merged;  // left/right: the ids the pair had when queued
    bool operator>(const Candidate& o) const {
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };
  const int32_t n = static_cast<int32_t>(word.size());
  std::vector<Symbol> symbols(n);
  for (int32_t i = 0; i < n; ++i) {
    symbols[i] = {byte_ids[static_cast<uint8_t>(word[i])], i - 1, i + 1 < n ? i + 1 : -1, true};
  }
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> queue;
  auto consider = [&](int32_t left) {
    if (left < 0 || symbols[left].next < 0) return;
    const int32_t a = symbols[left].id, b = symbols[symbols[left].next].id;
    auto it = merges.find(PairKey(a, b));
    if (it != merges.end()) queue.push({it->second.rank, left, a, b, it->second.merged});
  };
  for (int32_t i = 0; i + 1 < n; ++i) consider(i);
  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    Symbol& left = symbols[top.pos];
    // Stale when either side was merged since the candidate was queued.
    if (!left.alive || left.next < 0 || left.id != top.left ||
        symbols[left.next].id != top.right) {
      continue;
    }
    Symbol& right = symbols[left.next];
    left.id = top.merged;
    right.alive = false;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = top.pos;
    consider(left.prev);
    consider(top.pos);
  }
  for (int32_t i = 0; i >= 0; i = symbols[i].next) ids->push_back(symbols[i].id);
}

// ---------------------------------------------------------------------------------------------
// Loading

namespace {

// Loading copies and prints parts of the document with nlohmann's recursive functions, and
// reads nested normalizer Sequences recursively: a document of nested brackets could overflow
// the stack. Real files nest about 6 levels (a Sequence of Splits with their patterns).
constexpr int kMaxJsonDepth = 64;

// Ids a tokenizer.json may leave unused below its largest one (Qwen2.5 leaves none).
constexpr int64_t kMaxUnusedIds = 1 << 16;

// Whether containers in `j` nest more than `limit` levels; walks with its own stack.
bool NestedDeeperThan(const nlohmann::json& j, int limit) {
  std::vector<std::pair<const nlohmann::json*, int>> pending = {{&j, 1}};
  while (!pending.empty()) {
    const auto [node, depth] = pending.back();
    pending.pop_back();
    for (const nlohmann::json& child : *node) {
      if (!child.is_structured()) continue;
      if (depth + 1 > limit) return true;
      pending.emplace_back(&child, depth + 1);
    }
  }
  return false;
}

std::string Quote(const nlohmann::json& j) {
  // A token's bytes need not be UTF-8 (byte-level BPE): ill-formed bytes print as U+FFFD.
  std::string s = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return s.size() > 80 ? s.substr(0, 77) + "..." : s;
}

// Checks model.<key> is absent, null, or equal to one of the harmless values.
bool CheckUnsupported(const nlohmann::json& model, const char* key,
                      std::initializer_list<nlohmann::json> allowed, const char* what,
                      std::string* error) {
  auto it = model.find(key);
  if (it == model.end() || it->is_null()) return true;
  for (const auto& value : allowed) {
    if (*it == value) return true;
  }
  *error = std::string("model.") + key + ": " + Quote(*it) + " is not supported (" + what + ")";
  return false;
}

bool CheckDecoder(const nlohmann::json& decoder, std::string* error) {
  const nlohmann::json* d = &decoder;
  std::string path = "decoder";
  if (d->is_object() && d->value("type", "") == "Sequence" && d->contains("decoders") &&
      (*d)["decoders"].is_array() && (*d)["decoders"].size() == 1) {
    d = &(*d)["decoders"][0];
    path += ".decoders[0]";
  }
  if (!d->is_object() || d->value("type", "") != "ByteLevel") {
    *error = path + ": " + Quote(*d) +
             " is not supported (expected a ByteLevel decoder: byte-level BPE only)";
    return false;
  }
  return true;
}

}  // namespace

// Checks the model's options; BPE variants a byte-level tokenizer never uses are refused.
bool Tokenizer::Impl::LoadOptions(const nlohmann::json& model, std::string* error) {
  if (model.contains("type") && model["type"] != "BPE") {
    *error = "model.type: " + Quote(model["type"]) +
             " is not supported (expected \"BPE\": byte-level BPE only)";
    return false;
  }
  if (!CheckUnsupported(model, "dropout", {0, 0.0}, "BPE dropout is for training", error) ||
      !CheckUnsupported(model, "continuing_subword_prefix", {""}, "byte-level BPE has none",
                        error) ||
      !CheckUnsupported(model, "end_of_word_suffix", {""}, "byte-level BPE has none", error) ||
      !CheckUnsupported(model, "byte_fallback", {false}, "byte-level BPE needs none", error)) {
    return false;
  }
  const auto it = model.find("ignore_merges");
  if (it != model.end() && !it->is_null()) {
    if (!it->is_boolean()) {
      *error = "model.ignore_merges: expected true or false, got " + Quote(*it);
      return false;
    }
    ignore_merges = it->get<bool>();
  }
  return true;
}

// Sizes the id tables: ids may have holes, and added tokens may lie past the vocabulary.
bool Tokenizer::Impl::SizeTables(const nlohmann::json& vocab, const nlohmann::json& added,
                                 std::string* error) {
  auto valid_id = [](const nlohmann::json& id) {
    return id.is_number_integer() && id.get<int64_t>() >= 0 &&
           id.get<int64_t>() < std::numeric_limits<int32_t>::max();
  };
  int64_t max_id = -1;
  std::string max_where;  // the entry holding max_id, for the message below
  for (const auto& [token, id] : vocab.items()) {
    if (!valid_id(id)) {
      *error = "model.vocab[" + Quote(token) + "]: expected a non-negative integer id, got " +
               Quote(id);
      return false;
    }
    if (id.get<int64_t>() > max_id) {
      max_id = id.get<int64_t>();
      max_where = "model.vocab[" + Quote(token) + "]";
    }
  }
  for (size_t i = 0; i < added.size(); ++i) {
    const auto& t = added[i];
    if (!t.is_object() || !t.contains("id") || !valid_id(t["id"])) {
      *error = "added_tokens[" + std::to_string(i) + "].id: expected a non-negative integer";
      return false;
    }
    if (t["id"].get<int64_t>() > max_id) {
      max_id = t["id"].get<int64_t>();
      max_where = "added_tokens[" + std::to_string(i) + "].id";
    }
  }
  // The tables are indexed by id, so an id far beyond the number of tokens would make a small
  // file allocate gigabytes. Real files number their tokens densely.
  const auto tokens = static_cast<int64_t>(vocab.size() + added.size());
  if (max_id >= tokens + kMaxUnusedIds) {
    *error = max_where + ": id " + std::to_string(max_id) + " leaves more than " +
             std::to_string(kMaxUnusedIds) + " ids unused (the file has " +
             std::to_string(tokens) + " tokens)";
    return false;
  }
  token_bytes.resize(max_id + 1);
  token_kind.assign(max_id + 1, TokenKind::kNone);
  return true;
}

bool Tokenizer::Impl::LoadVocab(const nlohmann::json& vocab, std::string* error) {
  const ByteLevelAlphabet& alphabet = ByteLevelAlphabet::Get();
  for (const auto& [token, id_json] : vocab.items()) {
    const int32_t id = id_json.get<int32_t>();
    if (token_kind[id] != TokenKind::kNone) {
      *error = "model.vocab[" + Quote(token) + "]: id " + std::to_string(id) + " is used twice";
      return false;
    }
    token_kind[id] = TokenKind::kVocab;
    if (auto bytes = alphabet.Decode(token)) {
      token_bytes[id] = *bytes;
      vocab_by_bytes.emplace(std::move(*bytes), id);
    } else {
      token_bytes[id] = token;
      vocab_unmapped.emplace(token, id);
    }
  }
  for (int b = 0; b < 256; ++b) {
    auto it = vocab_by_bytes.find(std::string(1, static_cast<char>(b)));
    if (it == vocab_by_bytes.end()) {
      *error = "model.vocab: no token for byte " + std::to_string(b) + " (\"" +
               alphabet.CharOf(static_cast<uint8_t>(b)) +
               "\"); a byte-level vocabulary has all 256";
      return false;
    }
    byte_ids[b] = it->second;
  }
  return true;
}

bool Tokenizer::Impl::LoadMerges(const nlohmann::json& list, std::string* error) {
  merges.reserve(list.size());
  for (size_t i = 0; i < list.size(); ++i) {
    const auto& m = list[i];
    const std::string path = "model.merges[" + std::to_string(i) + "]";
    std::string left, right;
    if (m.is_string()) {
      const std::string s = m.get<std::string>();
      const size_t space = s.find(' ');
      if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos) {
        *error = path + ": " + Quote(m) + " is not two tokens separated by one space";
        return false;
      }
      left = s.substr(0, space);
      right = s.substr(space + 1);
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      left = m[0].get<std::string>();
      right = m[1].get<std::string>();
    } else {
      *error = path + ": expected \"a b\" or [\"a\", \"b\"], got " + Quote(m);
      return false;
    }
    const auto left_id = VocabId(left), right_id = VocabId(right);
    if (!left_id || !right_id) {
      *error = path + ": token " + Quote(left_id ? right : left) + " is not in model.vocab";
      return false;
    }
    auto merged = vocab_by_bytes.find(token_bytes[*left_id] + token_bytes[*right_id]);
    if (merged == vocab_by_bytes.end()) {
      *error = path + ": the merged token " + Quote(left + right) + " is not in model.vocab";
      return false;
    }
    merges.emplace(PairKey(*left_id, *right_id),
                   MergeRule{static_cast<int32_t>(i), merged->second});
  }
  return true;
}

bool Tokenizer::Impl::LoadAddedTokens(const nlohmann::json& list, std::string* error) {
  for (size_t i = 0; i < list.size(); ++i) {
    const auto& t = list[i];
    const std::string path = "added_tokens[" + std::to_string(i) + "]";
    if (!t.contains("content") || !t["content"].is_string() ||
        t["content"].get<std::string>().empty()) {
      *error = path + ".content: expected a non-empty string";
      return false;
    }
    for (const char* key : {"special", "lstrip", "rstrip", "single_word", "normalized"}) {
      if (t.contains(key) && !t[key].is_boolean()) {
        *error = path + "." + key + ": expected true or false, got " + Quote(t[key]);
        return false;
      }
    }
    if (t.value("single_word", false)) {
      *error = path + ".single_word: true is not supported";
      return false;
    }
    AddedToken token{t["content"].get<std::string>(), t["id"].get<int32_t>(),
                     t.value("lstrip", false), t.value("rstrip", false)};
    const std::string id = std::to_string(token.id);
    if (token_kind[token.id] == TokenKind::kVocab) {
      // Hugging Face lists vocabulary entries such as GPT-2's <|endoftext|> here again.
      if (VocabId(token.content) != token.id) {
        *error = path + ": id " + id + " is " + Quote(token_bytes[token.id]) +
                 " in model.vocab, not " + Quote(token.content);
        return false;
      }
    } else if (token_kind[token.id] != TokenKind::kNone) {
      *error = path + ": id " + id + " is listed twice";
      return false;
    }
    if (!added_by_content.emplace(token.content, token.id).second) {
      *error = path + ": content " + Quote(token.content) + " is listed twice";
      return false;
    }
    token_kind[token.id] = t.value("special", false) ? TokenKind::kSpecial : TokenKind::kAdded;
    token_bytes[token.id] = token.content;
    added.push_back(std::move(token));
  }
  std::stable_sort(added.begin(), added.end(), [](const auto& a, const auto& b) {
    return a.content.size() > b.content.size();
  });
  for (size_t i = 0; i < added.size(); ++i) {
    added_by_first_byte[static_cast<uint8_t>(added[i].content[0])].push_back(i);
  }
  return true;
}

std::unique_ptr<Tokenizer> Tokenizer::FromJson(const nlohmann::json& j, std::string* error) {
  std::string local_error;
  std::string& err = error != nullptr ? *error : local_error;
  if (!j.is_object()) {
    err = "expected a JSON object (a tokenizer.json)";
    return nullptr;
  }
  if (NestedDeeperThan(j, kMaxJsonDepth)) {
    err = "nested more than " + std::to_string(kMaxJsonDepth) +
          " levels deep (a tokenizer.json needs about 6)";
    return nullptr;
  }
  static const nlohmann::json kNoAddedTokens = nlohmann::json::array();
  const auto model_it = j.find("model");
  const auto added_it = j.find("added_tokens");
  const bool no_added = added_it == j.end() || added_it->is_null();
  const nlohmann::json& added = no_added ? kNoAddedTokens : *added_it;
  const char* problem = nullptr;
  if (model_it == j.end() || !model_it->is_object()) {
    problem = "model: missing or not an object";
  } else if (!model_it->contains("vocab") || !(*model_it)["vocab"].is_object()) {
    problem = "model.vocab: missing or not an object of token -> id";
  } else if (!model_it->contains("merges") || !(*model_it)["merges"].is_array()) {
    problem = "model.merges: missing or not an array";
  } else if (!added.is_array()) {
    problem = "added_tokens: expected an array";
  }
  if (problem != nullptr) {
    err = problem;
    return nullptr;
  }
  const nlohmann::json& model = *model_it;

  auto impl = std::make_unique<Impl>();
  if (!impl->LoadOptions(model, &err) || !impl->SizeTables(model["vocab"], added, &err) ||
      !impl->LoadVocab(model["vocab"], &err) || !impl->LoadMerges(model["merges"], &err) ||
      !impl->LoadAddedTokens(added, &err)) {
    return nullptr;
  }
  impl->normalizer = internal::Normalizer::FromJson(j.value("normalizer", nlohmann::json()),
                                                    "normalizer", &err);
  if (!impl->normalizer) return nullptr;
  impl->pre_tokenizer = internal::PreTokenizer::FromJson(
      j.value("pre_tokenizer", nlohmann::json()), "pre_tokenizer", &err);
  if (!impl->pre_tokenizer) return nullptr;
  if (!CheckDecoder(j.value("decoder", nlohmann::json()), &err)) return nullptr;
  return std::unique_ptr<Tokenizer>(new Tokenizer(std::move(impl)));
}

std::unique_ptr<Tokenizer> Tokenizer::FromFile(const std::string& path, std::string* error) {
  std::string local_error;
  std::string& err = error != nullptr ? *error : local_error;
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    err = path + ": is a directory (expected the tokenizer.json file in it)";
    return nullptr;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    err = path + ": cannot open";
    return nullptr;
  }
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::parse_error& e) {
    err = path + ": not valid JSON: " + e.what();
    return nullptr;
  }
  auto tokenizer = FromJson(j, &err);
  if (!tokenizer) err = path + ": " + err;
  return tokenizer;
}

// ---------------------------------------------------------------------------------------------
// Use

Tokenizer::Tokenizer(std::unique_ptr<const Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::~Tokenizer() = default;

std::vector<int32_t> Tokenizer::Encode(std::string_view text) const {
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 1);
  WordCache cache;
  size_t pos = 0;
  while (true) {
    const std::optional<AddedMatch> match = impl_->FindAdded(text, pos);
    const size_t end = match ? match->start : text.size();
    impl_->EncodeSegment(text.substr(pos, end - pos), &cache, &ids);
    if (!match) break;
    ids.push_back(match->id);
    pos = match->end;
  }
  return ids;
}

std::string Tokenizer::Decode(std::span<const int32_t> ids, bool skip_special_tokens) const {
  std::string bytes;
  for (int32_t id : ids) {
    if (skip_special_tokens && IsSpecial(id)) continue;
    bytes += TokenBytes(id);
  }
  std::string text;
  text.reserve(bytes.size());
  common::utf8::AppendLossy(bytes, &text, /*hold_incomplete_tail=*/false);
  return text;
}

std::optional<int32_t> Tokenizer::TokenToId(std::string_view token) const {
  auto it = impl_->added_by_content.find(std::string(token));
  if (it != impl_->added_by_content.end()) return it->second;
  return impl_->VocabId(token);
}

std::string_view Tokenizer::TokenBytes(int32_t id) const {
  if (id < 0 || id >= vocab_size()) return {};
  return impl_->token_bytes[id];
}

int32_t Tokenizer::vocab_size() const { return static_cast<int32_t>(impl_->token_bytes.size()); }

bool Tokenizer::IsSpecial(int32_t id) const {
  return id >= 0 && id < vocab_size() && impl_->token_kind[id] == TokenKind::kSpecial;
}

// ---------------------------------------------------------------------------------------------
// StreamDecoder

StreamDecoder::StreamDecoder(const Tokenizer& tokenizer, bool skip_special_tokens)
    : tokenizer_(tokenizer), skip_special_tokens_(skip_special_tokens) {}

std::string StreamDecoder::Push(int32_t id) {
  if (skip_special_tokens_ && tokenizer_.IsSpecial(id)) return {};
  pending_ += tokenizer_.TokenBytes(id);
  std::string text;
  const size_t consumed = common::utf8::AppendLossy(pending_, &text, /*hold_incomplete_tail=*/true);
  pending_.erase(0, consumed);
  return text;
}

std::string StreamDecoder::Flush() {
  std::string text;
  common::utf8::AppendLossy(pending_, &text, /*hold_incomplete_tail=*/false);
  pending_.clear();
  return text;
}

}  // namespace rl::text
