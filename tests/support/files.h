// tests/support/files.h: a whole file's bytes, or its JSON lines, for tests that check what a
// program wrote.
//
//   CHECK_THAT(rl::testing::ReadFile(dir / "out.jsonl"), Contains("\"reward\""));
//   std::vector<nlohmann::json> metrics = rl::testing::ReadJsonLines(run / "metrics.jsonl");
//
// A file that does not exist reads as empty: the checks on its content then say what is missing.
#pragma once

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace rl::testing {

inline std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

// One parsed value per line (throws nlohmann::json::parse_error on a line that is not JSON).
inline std::vector<nlohmann::json> ReadJsonLines(const std::filesystem::path& path) {
  std::vector<nlohmann::json> lines;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) lines.push_back(nlohmann::json::parse(line));
  return lines;
}

}  // namespace rl::testing
