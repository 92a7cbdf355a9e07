// Shared by the suite test and the benchmark: rows of Math-Verify's test suite (tests/math/suite)
// and the verifier options each row asks for.
#pragma once

#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "rewards/math/verify.h"

namespace rl::rewards::math::testing {

struct SuiteRow {
  std::string id;  // "suite:12" or "extra:3"
  std::string pred, gold;
  bool expected = false;
  VerifierOptions options;
};

// match_types -> extraction kinds, precision, strict, allow_set_relation_comp ->
// interval_accepts_inequality, string_extraction rows -> multiple-choice labels.
inline VerifierOptions OptionsForRow(const nlohmann::json& row) {
  VerifierOptions options;
  options.precision = row.value("precision", 6);
  options.strict = row.value("strict", true);
  options.interval_accepts_inequality = row.value("allow_set_relation_comp", false);
  if (row.value("mode", "") == "string_extraction") {
    options.choices = row.at("strings").get<std::vector<std::string>>();
    options.choices_ignore_case = row.value("lowercase", false);
    return options;
  }
  if (row.contains("match_types") && row["match_types"].is_array()) {
    bool latex = false, expr = false;
    for (const auto& t : row["match_types"]) {
      latex = latex || t == "latex";
      expr = expr || t == "expr";
    }
    options.extraction = {Extraction::kAnswerTag, Extraction::kBoxed, Extraction::kAnchor};
    if (latex) options.extraction.push_back(Extraction::kMathEnv);
    if (expr) options.extraction.push_back(Extraction::kNumber);
  }
  return options;
}

inline std::vector<SuiteRow> LoadSuite(const std::string& path, const std::string& prefix) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path);
  std::vector<SuiteRow> rows;
  std::string line;
  int index = 0;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    nlohmann::json j = nlohmann::json::parse(line);
    SuiteRow row;
    row.id = prefix + ":" + std::to_string(index++);
    row.pred = j.at("pred").get<std::string>();
    row.gold = j.at("gold").get<std::string>();
    row.expected = j.at("expected").get<bool>();
    row.options = OptionsForRow(j);
    rows.push_back(std::move(row));
  }
  return rows;
}

inline std::vector<SuiteRow> LoadDevelopmentSet(const std::string& data_dir) {
  std::vector<SuiteRow> rows = LoadSuite(data_dir + "/math_equiv_suite.jsonl", "suite");
  std::vector<SuiteRow> extra = LoadSuite(data_dir + "/math_equiv_suite_extra.jsonl", "extra");
  rows.insert(rows.end(), extra.begin(), extra.end());
  return rows;
}

}  // namespace rl::rewards::math::testing
