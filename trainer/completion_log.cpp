#include "trainer/completion_log.h"

#include <algorithm>
#include <vector>

#include <fmt/format.h>

#include "common/utf8.h"

namespace rl::trainer {
namespace {

// The characters of `text` (ill-formed bytes as U+FFFD), each as its UTF-8 bytes, a newline as
// "⏎" so that one completion stays on one terminal line, other control characters as U+FFFD
// (a tab or an escape sequence would move the terminal's cursor).
std::vector<std::string> DisplayCharacters(const std::string& text) {
  std::string valid;
  common::utf8::AppendLossy(text, &valid, /*hold_incomplete_tail=*/false);
  std::vector<std::string> chars;
  for (size_t pos = 0; pos < valid.size();) {
    const size_t length = std::max<size_t>(common::utf8::ScanAt(valid, pos).length, 1);
    const auto byte = static_cast<unsigned char>(valid[pos]);
    if (byte == '\n') chars.push_back("⏎");
    else if (byte < 0x20 || byte == 0x7f) chars.push_back("\xef\xbf\xbd");
    else chars.push_back(valid.substr(pos, length));
    pos += length;
  }
  return chars;
}

// chars[first, last), with "…" before or after it where text was left out.
std::string Join(const std::vector<std::string>& chars, size_t first, size_t last) {
  std::string out = first > 0 ? "…" : "";
  for (size_t i = first; i < last; ++i) out += chars[i];
  if (last < chars.size()) out += "…";
  return out;
}

std::string Head(const std::string& text, size_t n) {
  const std::vector<std::string> chars = DisplayCharacters(text);
  return Join(chars, 0, std::min(n, chars.size()));
}

std::string Tail(const std::string& text, size_t n) {
  const std::vector<std::string> chars = DisplayCharacters(text);
  return Join(chars, chars.size() - std::min(n, chars.size()), chars.size());
}

}  // namespace

nlohmann::ordered_json ToJson(const CompletionRecord& record) {
  const nlohmann::ordered_json wire = rewards::ToJson(record.result);
  nlohmann::ordered_json j = {{"step", record.step},
                              {"prompt", record.prompt},
                              {"completion", record.completion},
                              {"rewards", wire["components"]},
                              {"reward", wire["reward"]},
                              {"advantage", record.advantage ? nlohmann::ordered_json(*record.advantage) : nullptr},
                              {"status", wire["status"]},
                              {"verdict", wire["verdict"]},
                              {"extracted", wire["extracted"]},
                              {"finish_reason", record.finish_reason},
                              {"length", record.length}};
  if (wire.contains("detail")) j["detail"] = wire["detail"];
  return j;
}

std::string CompletionLine(const CompletionRecord& record) {
  return ToJson(record).dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

std::string CompletionSummary(const CompletionRecord& record, size_t prompt_chars, size_t completion_chars) {
  const std::string reward = record.result.total ? fmt::format("{:+.2f}", *record.result.total) : "unscorable";
  const std::string_view verdict =
      record.result.answer_check ? rewards::math::ToString(record.result.answer_check->verdict) : "";
  return fmt::format("[reward {}{}{} | {} tok, {}] {} ⇒ {}", reward, verdict.empty() ? "" : " ", verdict,
                     record.length, record.finish_reason, Tail(record.prompt, prompt_chars),
                     Head(record.completion, completion_chars));
}

}  // namespace rl::trainer
