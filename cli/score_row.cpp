// Reading one row of `rl score`'s input: parse with bounded nesting, then check the keys the
// rules read.
#include "cli/score_row.h"

#include <limits>
#include <utility>

namespace rl::cli {
namespace {

using Json = nlohmann::ordered_json;

// nlohmann's message without its "[json.exception.parse_error.101] " prefix. It quotes the
// bytes it read last, which may be ill-formed UTF-8: written as a JSON string's contents (those
// bytes as U+FFFD) it is safe to print anywhere.
std::string JsonErrorText(const nlohmann::json::exception& e) {
  std::string what = e.what();
  const size_t bracket = what.find("] ");
  if (bracket != std::string::npos) what.erase(0, bracket + 2);
  const std::string quoted =
      nlohmann::json(what).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return quoted.substr(1, quoted.size() - 2);
}

// Parses `line` into *json; on failure returns false and says why in *what. The parser opens
// levels without recursion, and the callback drops every level past max_depth unstored, so
// what lands in *json is shallow enough for the recursive dump and destructor.
bool ParseBounded(std::string_view line, int max_depth, Json* json, std::string* what) {
  bool too_deep = false;
  const Json::parser_callback_t limit = [&](int depth, Json::parse_event_t event, Json&) {
    const bool opens =
        event == Json::parse_event_t::object_start || event == Json::parse_event_t::array_start;
    if (opens && depth >= max_depth) too_deep = true;
    return !(opens && depth >= max_depth);
  };
  try {
    *json = Json::parse(line, limit);
  } catch (const nlohmann::json::parse_error& e) {
    *what = "invalid JSON: " + JsonErrorText(e);
    return false;
  } catch (const nlohmann::json::exception& e) {  // out_of_range 406: a number such as 1e400
    *what = JsonErrorText(e);
    return false;
  }
  if (too_deep) *what = "nested deeper than " + std::to_string(max_depth) + " levels";
  return !too_deep;
}

std::string ExpectedGot(const std::string& key, std::string_view expected, const Json& value) {
  return "key '" + key + "': expected " + std::string(expected) + ", got " + value.type_name();
}

// Each Read* checks the value under one key and fills its field of *row; it returns what was
// wrong, or "".
template <std::string_view ScoreRow::*kField>  // the completion or the prompt
std::string ReadString(const std::string& key, const Json& value, ScoreRow* row) {
  if (!value.is_string()) return ExpectedGot(key, "a string", value);
  row->*kField = value.get_ref<const std::string&>();
  return "";
}

std::string ReadGold(const std::string& key, const Json& value, ScoreRow* row) {
  if (value.is_string()) {
    row->gold = value.get_ref<const std::string&>();
  } else if (value.is_number()) {
    row->gold = value.dump();  // datasets often store numeric answers as numbers
  } else {
    return ExpectedGot(key, "a string or a number", value);
  }
  return "";
}

std::string ReadTokens(const std::string& key, const Json& value, ScoreRow* row) {
  // Non-negative literals parse as unsigned: 2^63 and up fit no int64_t. Past 2^64 they
  // parse as doubles, which is_number_integer() already refuses.
  const bool fits = value.is_number_unsigned()
                        ? value.get<uint64_t>() <= std::numeric_limits<int64_t>::max()
                        : value.is_number_integer() && value.get<int64_t>() >= 0;
  if (!fits) {
    return "key '" + key + "': expected a non-negative integer, got " +
           (value.is_number() ? value.dump() : std::string(value.type_name()));
  }
  row->completion_tokens = value.get<int64_t>();
  return "";
}

struct Field {
  const std::string& key;
  bool optional;  // absent or null: the row has none
  std::string (*read)(const std::string& key, const Json& value, ScoreRow* row);
};

}  // namespace

std::string RowError::Message(std::string_view file) const {
  return std::string(file) + ":" + std::to_string(line) + ": " + what;
}

rewards::Sample ScoreRow::sample() const {
  rewards::Sample sample;
  sample.prompt = prompt;
  sample.completion = completion;
  if (gold) sample.gold = std::string_view(*gold);
  sample.completion_tokens = completion_tokens;
  return sample;
}

RowResult ReadScoreRow(std::string_view line, int64_t line_number, const RowOptions& options) {
  RowResult result;
  result.error.line = line_number;
  std::string& what = result.error.what;
  if (line.size() > options.max_line_bytes) {
    what = "line longer than " + std::to_string(options.max_line_bytes) +
           " bytes (--max-line-bytes)";
    return result;
  }
  ScoreRow row;
  if (!ParseBounded(line, options.max_depth, &row.json, &what)) return result;
  if (!row.json.is_object()) {
    what = "expected a JSON object, got " + std::string(row.json.type_name());
    return result;
  }
  if (!row.json.contains(options.completion_key)) {
    result.error.key = options.completion_key;
    what = "key '" + options.completion_key +
           "' missing (--completion-key names the completion's key)";
    return result;
  }
  const Field fields[] = {{options.completion_key, false, ReadString<&ScoreRow::completion>},
                          {options.prompt_key, true, ReadString<&ScoreRow::prompt>},
                          {options.answer_key, true, ReadGold},
                          {options.tokens_key, true, ReadTokens}};
  for (const Field& field : fields) {
    auto value = row.json.find(field.key);
    if (value == row.json.end() || (field.optional && value->is_null())) continue;
    what = field.read(field.key, *value, &row);
    if (!what.empty()) {
      result.error.key = field.key;
      return result;
    }
  }
  result.row = std::move(row);
  return result;
}

}  // namespace rl::cli
