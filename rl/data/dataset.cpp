#include "rl/data/dataset.h"

#include <fstream>

#include <nlohmann/json.hpp>

namespace rl::data {
namespace {

const nlohmann::json& Find(const nlohmann::json& row, const std::string& key, const std::string& where) {
  auto it = row.find(key);
  if (it == row.end()) {
    std::string present;
    for (const auto& item : row.items()) present += (present.empty() ? "" : ", ") + item.key();
    throw DataError(where + ": missing key '" + key + "' (keys present: " + present + ")");
  }
  return *it;
}

std::string ReadField(const nlohmann::json& row, const std::string& key, bool numbers_allowed,
                      const std::string& where) {
  const nlohmann::json& value = Find(row, key, where);
  if (value.is_string()) return value.get<std::string>();
  if (numbers_allowed && value.is_number()) return value.dump();
  throw DataError(where + ": key '" + key + "' must be a string" + (numbers_allowed ? " or a number" : "") +
                  ", got " + value.type_name());
}

// One message of a conversation; `field` names it ("prompt[2]") in errors.
text::ChatMessage ReadMessage(const nlohmann::json& message, const std::string& field, const std::string& where) {
  if (!message.is_object()) {
    throw DataError(where + ": key '" + field + "' must be an object {\"role\", \"content\"}, got " +
                    message.type_name());
  }
  auto role = message.find("role");
  auto content = message.find("content");
  if (role == message.end() || content == message.end()) {
    throw DataError(where + ": key '" + field + "' must have 'role' and 'content', missing '" +
                    (role == message.end() ? "role" : "content") + "'");
  }
  if (!role->is_string() || (*role != "system" && *role != "user" && *role != "assistant")) {
    throw DataError(where + ": key '" + field + ".role' must be \"system\", \"user\" or \"assistant\", got " +
                    (role->is_string() ? "\"" + role->get<std::string>() + "\"" : std::string(role->type_name())));
  }
  if (!content->is_string()) {
    throw DataError(where + ": key '" + field + ".content' must be a string, got " + content->type_name());
  }
  return {role->get<std::string>(), content->get<std::string>()};
}

// TRL's conversational prompt. The last message must be the user's: the template then ends
// with the assistant's generation prompt, as TRL renders it (TRL would continue a final
// assistant message instead, a case this reader does not model).
std::vector<text::ChatMessage> ReadMessages(const nlohmann::json& list, const std::string& key,
                                            const std::string& where) {
  if (list.empty()) throw DataError(where + ": key '" + key + "' is an empty list; expected at least one message");
  std::vector<text::ChatMessage> messages;
  for (size_t i = 0; i < list.size(); ++i) {
    messages.push_back(ReadMessage(list[i], key + "[" + std::to_string(i) + "]", where));
  }
  if (messages.back().role != "user") {
    throw DataError(where + ": key '" + key + "': the last message must have role \"user\", got \"" +
                    messages.back().role + "\"");
  }
  return messages;
}

void ReadPrompt(const nlohmann::json& row, const std::string& key, const std::string& where, Example& example) {
  const nlohmann::json& value = Find(row, key, where);
  if (value.is_string()) {
    example.prompt = value.get<std::string>();
  } else if (value.is_array()) {
    example.messages = ReadMessages(value, key, where);
  } else {
    throw DataError(where + ": key '" + key + "' must be a string or a list of chat messages, got " +
                    value.type_name());
  }
}

}  // namespace

std::vector<Example> ReadJsonlExamples(const std::string& path, const JsonlKeys& keys) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw DataError(path + ": cannot open the data file");
  std::vector<Example> examples;
  std::string line;
  for (int64_t number = 1; std::getline(in, line); ++number) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    const std::string where = path + ":" + std::to_string(number);
    nlohmann::json row = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (row.is_discarded()) throw DataError(where + ": not valid JSON");
    if (!row.is_object()) throw DataError(where + ": expected a JSON object, got " + row.type_name());
    Example example;
    ReadPrompt(row, keys.prompt_key, where, example);
    example.answer = ReadField(row, keys.answer_key, /*numbers_allowed=*/true, where);
    if (!keys.response_key.empty()) {
      example.response = ReadField(row, keys.response_key, /*numbers_allowed=*/false, where);
    }
    examples.push_back(std::move(example));
  }
  if (examples.empty()) throw DataError(path + ": no examples (the file is empty)");
  return examples;
}

}  // namespace rl::data
