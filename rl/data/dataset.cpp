#include "rl/data/dataset.h"

#include <fstream>

#include <nlohmann/json.hpp>

namespace rl::data {
namespace {

std::string ReadField(const nlohmann::json& row, const std::string& key, bool numbers_allowed,
                      const std::string& where) {
  auto it = row.find(key);
  if (it == row.end()) {
    std::string present;
    for (const auto& item : row.items()) present += (present.empty() ? "" : ", ") + item.key();
    throw DataError(where + ": missing key '" + key + "' (keys present: " + present + ")");
  }
  if (it->is_string()) return it->get<std::string>();
  if (numbers_allowed && it->is_number()) return it->dump();
  throw DataError(where + ": key '" + key + "' must be a string" +
                  (numbers_allowed ? " or a number" : "") + ", got " + it->type_name());
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
    example.prompt = ReadField(row, keys.prompt_key, /*numbers_allowed=*/false, where);
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
