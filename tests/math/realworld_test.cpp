// Real model outputs with independent correctness labels (tests/math/realworld: GPT-3 on
// GSM8K, Qwen2.5-Math and Llama 3.1 on Gaokao and OlympiadBench, GPT-4 and Claude 2 on
// TheoremQA). The verifier, with the options a training run uses, must agree with the labels
// on at least 98% of the rows, and every row where it does not must be listed, with its
// reason, in tests/math/realworld/disagreements.md (so the list cannot go stale).
#include <catch2/catch.hpp>

#include <fstream>
#include <iostream>
#include <map>
#include <regex>
#include <set>

#include "rewards/math/verify.h"
#include "tests/math/disagreement_list.h"
#include "tests/math/realworld_rows.h"

TEST_CASE("real model outputs: agreement with their sources' labels", "[math][realworld]") {
  auto rows = rl::rewards::math::testing::LoadRealWorld("math/realworld/realworld.jsonl");
  REQUIRE(rows.size() == 2363);
  rl::rewards::math::Verifier verifier;
  std::set<std::string> disagreements;
  std::map<std::string, std::pair<int, int>> by_family;  // agreeing rows, rows
  for (const auto& row : rows) {
    rl::rewards::math::CheckResult r = verifier.Check(row.completion, row.gold);
    bool correct = r.verdict == rl::rewards::math::Verdict::kCorrect;
    auto& [agree, total] = by_family[row.family];
    ++total;
    if (correct == row.label) {
      ++agree;
      continue;
    }
    disagreements.insert(row.id);
    std::cout << row.id << " label=" << row.label << " got=" << ToString(r.verdict)
              << " extracted=[" << r.extracted << "] pred=[" << r.pred_canonical << "] gold=["
              << r.gold_canonical << "] " << r.detail << "\n";
  }
  CHECK(by_family.size() >= 4);
  for (const auto& [family, counts] : by_family) {
    std::cout << family << ": " << counts.first << "/" << counts.second << "\n";
  }
  size_t agree = rows.size() - disagreements.size();
  std::cout << "agreement: " << agree << "/" << rows.size() << " ("
            << 100.0 * static_cast<double>(agree) / static_cast<double>(rows.size()) << "%)\n";
  CHECK(static_cast<double>(agree) >= 0.98 * static_cast<double>(rows.size()));
  CHECK(disagreements == rl::rewards::math::testing::ListedDisagreements("math/realworld/disagreements.md", R"([^`]+)"));
}
