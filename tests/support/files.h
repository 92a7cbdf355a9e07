// tests/support/files.h: a whole file's bytes, for tests that check what a program wrote.
//
//   CHECK_THAT(rl::testing::ReadFile(dir / "out.jsonl"), Contains("\"reward\""));
//
// A file that does not exist reads as empty: the checks on its content then say what is missing.
#pragma once

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace rl::testing {

inline std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

}  // namespace rl::testing
