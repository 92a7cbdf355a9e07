// Shared by the real-output test and the benchmark: rows of tests/math/realworld/realworld.jsonl,
// model completions with the gold answer and the correctness label their source gave them.
#pragma once

#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace rl::rewards::math::testing {

struct RealWorldRow {
  std::string id;      // "<dataset>/<model>/<index in the source>"
  std::string family;  // "GPT-3", "Qwen2.5", ...
  std::string completion, gold;
  bool label = false;  // the source's verdict: the completion's final answer is correct
};

inline std::vector<RealWorldRow> LoadRealWorld(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path);
  std::vector<RealWorldRow> rows;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    nlohmann::json j = nlohmann::json::parse(line);
    rows.push_back({j.at("id").get<std::string>(), j.at("family").get<std::string>(),
                    j.at("completion").get<std::string>(), j.at("gold").get<std::string>(),
                    j.at("label").get<bool>()});
  }
  return rows;
}

}  // namespace rl::rewards::math::testing
