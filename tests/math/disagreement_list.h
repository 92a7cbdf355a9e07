// The ids a development set's disagreement file lists ("- `ID` — reason" lines), which its test
// compares with the disagreements it finds, so that the file cannot go stale.
#pragma once

#include <fstream>
#include <regex>
#include <set>
#include <stdexcept>
#include <string>

namespace rl::rewards::math::testing {

// `id_pattern` matches one id (the text between the backquotes).
inline std::set<std::string> ListedDisagreements(const std::string& path, const std::string& id_pattern) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(path + ": cannot open");
  const std::regex item("^- `(" + id_pattern + ")`");
  std::set<std::string> ids;
  std::string line;
  std::smatch m;
  while (std::getline(in, line)) {
    if (std::regex_search(line, m, item)) ids.insert(m[1]);
  }
  return ids;
}

}  // namespace rl::rewards::math::testing
