// The development set: Math-Verify's own equivalence cases (tests/math/suite, Apache-2.0).
// Agreement must stay at or above 97%, and every disagreement must be listed, with its
// reason, in tests/math/suite/math_equiv_disagreements.md (so the list cannot go stale).
#include <catch2/catch.hpp>

#include <fstream>
#include <iostream>
#include <regex>
#include <set>

#include "tests/math/disagreement_list.h"
#include "tests/math/suite_common.h"

TEST_CASE("development set agreement with Math-Verify's expectations", "[math][suite]") {
  auto rows = rl::rewards::math::testing::LoadDevelopmentSet("math/suite");
  REQUIRE(rows.size() == 308);
  std::set<std::string> disagreements;
  for (const auto& row : rows) {
    rl::rewards::math::Verifier verifier(row.options);
    rl::rewards::math::CheckResult r = verifier.Check(row.pred, row.gold);
    bool correct = r.verdict == rl::rewards::math::Verdict::kCorrect;
    if (correct != row.expected) {
      disagreements.insert(row.id);
      std::cout << row.id << " expected=" << row.expected << " got=" << ToString(r.verdict)
                << " extracted=[" << r.extracted << "] pred=[" << r.pred_canonical
                << "] gold=[" << r.gold_canonical << "] " << r.detail << "\n";
    }
  }
  size_t agree = rows.size() - disagreements.size();
  std::cout << "agreement: " << agree << "/" << rows.size() << " ("
            << 100.0 * static_cast<double>(agree) / static_cast<double>(rows.size()) << "%)\n";
  CHECK(static_cast<double>(agree) >= 0.97 * static_cast<double>(rows.size()));
  CHECK(disagreements == rl::rewards::math::testing::ListedDisagreements("math/suite/math_equiv_disagreements.md", R"((suite|extra):[0-9]+)"));
}
