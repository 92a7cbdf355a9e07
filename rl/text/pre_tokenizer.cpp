#include "rl/text/pre_tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <unicode/bytestream.h>

#include "common/utf8.h"

namespace rl::text::internal {
namespace {

// GPT-2's word splitter, which a ByteLevel pre-tokenizer with use_regex applies.
constexpr char kGpt2Pattern[] =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

constexpr char kQwen2Pattern[] =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

std::string Quote(const nlohmann::json& j) { return j.dump(); }

// Hugging Face runs these patterns on Oniguruma, where \s is Unicode White_Space. PCRE2's \s in
// UCP mode also takes U+180E, so spell the property out (it is valid inside classes too).
std::string WithUnicodeWhitespace(std::string_view pattern) {
  std::string out;
  for (size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] != '\\' || i + 1 == pattern.size()) {
      out.push_back(pattern[i]);
      continue;
    }
    const char next = pattern[++i];
    if (next == 's') {
      out += "\\p{White_Space}";
    } else if (next == 'S') {
      out += "\\P{White_Space}";
    } else {
      out.push_back('\\');
      out.push_back(next);
    }
  }
  return out;
}

struct CodeDeleter {
  void operator()(pcre2_code* code) const { pcre2_code_free(code); }
};
using CodePtr = std::shared_ptr<pcre2_code>;

CodePtr CompileSplitRegex(std::string_view pattern, bool literal, std::string* error) {
  const std::string source = literal ? std::string(pattern) : WithUnicodeWhitespace(pattern);
  // PCRE2_LITERAL refuses PCRE2_UCP, which a literal does not need.
  const uint32_t options = PCRE2_UTF | PCRE2_MATCH_INVALID_UTF |
                           (literal ? PCRE2_LITERAL : PCRE2_UCP);
  int code_error = 0;
  PCRE2_SIZE offset = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(source.data()), source.size(),
                                   options, &code_error, &offset, nullptr);
  if (code == nullptr) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(code_error, message, sizeof(message));
    *error = "PCRE2 cannot compile it: " + std::string(reinterpret_cast<char*>(message)) +
             " at offset " + std::to_string(offset);
    return nullptr;
  }
  // JIT is an optimisation only: when it is unavailable the interpreter runs the same pattern.
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
  return CodePtr(code, CodeDeleter());
}

size_t NextCharStart(std::string_view s, size_t pos) {
  ++pos;
  while (pos < s.size() && (static_cast<uint8_t>(s[pos]) & 0xC0) == 0x80) ++pos;
  return pos;
}

bool GetBool(const nlohmann::json& j, const char* key, bool fallback, const std::string& path,
             std::string* error, bool* value) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    *value = fallback;
    return true;
  }
  if (!it->is_boolean()) {
    *error = path + "." + key + ": expected true or false, got " + Quote(*it);
    return false;
  }
  *value = it->get<bool>();
  return true;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// ByteLevelAlphabet

const ByteLevelAlphabet& ByteLevelAlphabet::Get() {
  static const ByteLevelAlphabet alphabet;
  return alphabet;
}

ByteLevelAlphabet::ByteLevelAlphabet() {
  // Printable Latin-1 bytes stand for themselves; the 68 others get U+0100 onwards, in order.
  auto printable = [](int b) {
    return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
  };
  byte_of_.fill(-1);
  size_t next = 0;
  for (int b = 0; b < 256; ++b) {
    if (printable(b)) order_[next++] = static_cast<uint8_t>(b);
  }
  char32_t extra = 256;
  for (int b = 0; b < 256; ++b) {
    const char32_t cp = printable(b) ? static_cast<char32_t>(b) : extra++;
    if (!printable(b)) order_[next++] = static_cast<uint8_t>(b);
    common::utf8::AppendCodePoint(cp, &char_of_[b]);
    byte_of_[cp] = static_cast<int16_t>(b);
  }
}

std::string ByteLevelAlphabet::Encode(std::string_view bytes) const {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) out += char_of_[static_cast<uint8_t>(c)];
  return out;
}

std::optional<std::string> ByteLevelAlphabet::Decode(std::string_view token) const {
  std::string out;
  out.reserve(token.size());
  for (size_t pos = 0; pos < token.size();) {
    const common::utf8::Scan scan = common::utf8::ScanAt(token, pos);
    if (!scan.complete) return std::nullopt;
    const char32_t cp = common::utf8::DecodeAt(token, pos, scan.length);
    if (cp >= byte_of_.size() || byte_of_[cp] < 0) return std::nullopt;
    out.push_back(static_cast<char>(byte_of_[cp]));
    pos += scan.length;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Normalizer

std::unique_ptr<Normalizer> Normalizer::FromJson(const nlohmann::json& j, const std::string& path,
                                                 std::string* error) {
  auto normalizer = std::unique_ptr<Normalizer>(new Normalizer());
  if (j.is_null()) return normalizer;
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string()) {
    *error = path + ": expected null or an object with a \"type\", got " + Quote(j);
    return nullptr;
  }
  const std::string type = j["type"].get<std::string>();
  if (type == "Sequence") {
    const auto it = j.find("normalizers");
    if (it == j.end() || !it->is_array()) {
      *error = path + ".normalizers: expected an array";
      return nullptr;
    }
    for (size_t i = 0; i < it->size(); ++i) {
      auto inner = FromJson((*it)[i], path + ".normalizers[" + std::to_string(i) + "]", error);
      if (!inner) return nullptr;
      normalizer->forms_.insert(normalizer->forms_.end(), inner->forms_.begin(),
                                inner->forms_.end());
    }
    return normalizer;
  }
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* form = nullptr;
  if (type == "NFC") form = icu::Normalizer2::getNFCInstance(status);
  else if (type == "NFD") form = icu::Normalizer2::getNFDInstance(status);
  else if (type == "NFKC") form = icu::Normalizer2::getNFKCInstance(status);
  else if (type == "NFKD") form = icu::Normalizer2::getNFKDInstance(status);
  else {
    *error = path + ".type: normalizer \"" + type +
             "\" is not supported (expected NFC, NFD, NFKC, NFKD or a Sequence of them)";
    return nullptr;
  }
  if (U_FAILURE(status)) {
    *error = path + ".type: ICU cannot provide " + type + ": " + u_errorName(status);
    return nullptr;
  }
  normalizer->forms_.push_back(form);
  return normalizer;
}

std::string Normalizer::Apply(std::string_view text) const {
  std::string current(text);
  for (const icu::Normalizer2* form : forms_) {
    std::string next;
    next.reserve(current.size());
    size_t pos = 0;
    while (pos < current.size()) {
      // Find the maximal valid run starting at pos, normalise it, copy the invalid bytes after.
      size_t end = pos;
      while (end < current.size()) {
        const common::utf8::Scan scan = common::utf8::ScanAt(current, end);
        if (!scan.complete) break;
        end += scan.length;
      }
      if (end > pos) {
        icu::StringByteSink<std::string> sink(&next);
        UErrorCode status = U_ZERO_ERROR;
        form->normalizeUTF8(0, icu::StringPiece(current.data() + pos, end - pos), sink, nullptr,
                            status);
        if (U_FAILURE(status)) next.append(current, pos, end - pos);  // only on out-of-memory
      }
      pos = end;
      while (pos < current.size() && !common::utf8::ScanAt(current, pos).complete) {
        next.push_back(current[pos++]);
      }
    }
    current = std::move(next);
  }
  return current;
}

// ---------------------------------------------------------------------------------------------
// PreTokenizer

struct PreTokenizer::Step {
  CodePtr split;             // null for a prefix-space step
  bool add_prefix_space = false;
};

PreTokenizer::PreTokenizer() = default;
PreTokenizer::~PreTokenizer() = default;

namespace {

// Parses one pre-tokenizer object into steps; *byte_level_seen records a ByteLevel step.
template <typename StepT>
bool ParseSteps(const nlohmann::json& j, const std::string& path, std::vector<StepT>* steps,
                bool* byte_level_seen, std::string* error) {
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string()) {
    *error = path + ": expected an object with a \"type\", got " + Quote(j);
    return false;
  }
  const std::string type = j["type"].get<std::string>();
  if (*byte_level_seen) {
    *error = path + ": a \"" + type + "\" step after ByteLevel is not supported";
    return false;
  }
  if (type == "Sequence") {
    const auto it = j.find("pretokenizers");
    if (it == j.end() || !it->is_array()) {
      *error = path + ".pretokenizers: expected an array";
      return false;
    }
    for (size_t i = 0; i < it->size(); ++i) {
      if (!ParseSteps((*it)[i], path + ".pretokenizers[" + std::to_string(i) + "]", steps,
                      byte_level_seen, error)) {
        return false;
      }
    }
    return true;
  }
  if (type == "Split") {
    const auto behavior = j.value("behavior", nlohmann::json());
    if (behavior != "Isolated") {
      *error = path + ".behavior: " + Quote(behavior) + " is not supported (expected \"Isolated\")";
      return false;
    }
    bool invert = false;
    if (!GetBool(j, "invert", false, path, error, &invert)) return false;
    if (invert) {
      *error = path + ".invert: true is not supported";
      return false;
    }
    const auto pattern = j.value("pattern", nlohmann::json());
    const bool is_regex = pattern.is_object() && pattern.contains("Regex");
    const bool is_string = pattern.is_object() && pattern.contains("String");
    const char* key = is_regex ? "Regex" : "String";
    if (!(is_regex || is_string) || !pattern[key].is_string()) {
      *error = path + ".pattern: expected {\"Regex\": \"...\"} or {\"String\": \"...\"}, got " +
               Quote(pattern);
      return false;
    }
    std::string regex_error;
    CodePtr code = CompileSplitRegex(pattern[key].get<std::string>(), is_string, &regex_error);
    if (!code) {
      *error = path + ".pattern." + key + ": " + regex_error;
      return false;
    }
    steps->push_back(StepT{std::move(code), false});
    return true;
  }
  if (type == "ByteLevel") {
    // Hugging Face's defaults for missing fields are true.
    bool add_prefix_space = true, use_regex = true;
    if (!GetBool(j, "add_prefix_space", true, path, error, &add_prefix_space)) return false;
    if (!GetBool(j, "use_regex", true, path, error, &use_regex)) return false;
    if (add_prefix_space) steps->push_back(StepT{nullptr, true});
    if (use_regex) {
      std::string regex_error;
      steps->push_back(StepT{CompileSplitRegex(kGpt2Pattern, false, &regex_error), false});
    }
    *byte_level_seen = true;
    return true;
  }
  *error = path + ".type: pre-tokenizer \"" + type +
           "\" is not supported (expected ByteLevel, Split or a Sequence of them)";
  return false;
}

// Appends the matches of `code` in `piece` and the gaps between them (behaviour Isolated).
void SplitIsolated(const pcre2_code* code, pcre2_match_data* match, std::string_view piece,
                   std::vector<std::string>* out) {
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(piece.data());
  size_t gap_start = 0, search = 0;
  while (search < piece.size()) {
    int rc = pcre2_match(code, subject, piece.size(), search, 0, match, nullptr);
    // Past the JIT's default 32 KiB stack (pathological input) the interpreter, which works on
    // the heap, takes over; past its limits too the rest stays unsplit: BPE still encodes it
    // losslessly.
    if (rc < 0 && rc != PCRE2_ERROR_NOMATCH) {
      rc = pcre2_match(code, subject, piece.size(), search, PCRE2_NO_JIT, match, nullptr);
    }
    if (rc < 0) break;
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(match);
    const size_t start = ovector[0], end = ovector[1];
    if (end == start) {  // empty matches make no piece
      search = NextCharStart(piece, start);
      continue;
    }
    if (start > gap_start) out->emplace_back(piece.substr(gap_start, start - gap_start));
    out->emplace_back(piece.substr(start, end - start));
    gap_start = search = end;
  }
  if (gap_start < piece.size()) out->emplace_back(piece.substr(gap_start));
}

}  // namespace

std::unique_ptr<PreTokenizer> PreTokenizer::FromJson(const nlohmann::json& j,
                                                     const std::string& path, std::string* error) {
  auto pre = std::unique_ptr<PreTokenizer>(new PreTokenizer());
  bool byte_level_seen = false;
  if (j.is_null()) {
    *error = path + ": missing; a ByteLevel pre-tokenizer is required (byte-level BPE only)";
    return nullptr;
  }
  if (!ParseSteps(j, path, &pre->steps_, &byte_level_seen, error)) return nullptr;
  if (!byte_level_seen) {
    *error = path + ": no ByteLevel step; only byte-level BPE tokenizers are supported";
    return nullptr;
  }
  return pre;
}

void PreTokenizer::Split(std::string_view text, std::vector<std::string>* words) const {
  std::vector<std::string> current{std::string(text)}, next;
  for (const Step& step : steps_) {
    if (step.add_prefix_space) {
      for (std::string& piece : current) {
        if (!piece.empty() && piece[0] != ' ') piece.insert(piece.begin(), ' ');
      }
      continue;
    }
    next.clear();
    pcre2_match_data* match = pcre2_match_data_create_from_pattern(step.split.get(), nullptr);
    for (const std::string& piece : current) SplitIsolated(step.split.get(), match, piece, &next);
    pcre2_match_data_free(match);
    current.swap(next);
  }
  for (std::string& piece : current) {
    if (!piece.empty()) words->push_back(std::move(piece));
  }
}

nlohmann::json Qwen2NormalizerJson() { return {{"type", "NFC"}}; }

nlohmann::json Qwen2PreTokenizerJson() {
  return {{"type", "Sequence"},
          {"pretokenizers",
           {{{"type", "Split"},
             {"pattern", {{"Regex", kQwen2Pattern}}},
             {"behavior", "Isolated"},
             {"invert", false}},
            {{"type", "ByteLevel"},
             {"add_prefix_space", false},
             {"trim_offsets", false},
             {"use_regex", false}}}}};
}

}  // namespace rl::text::internal
