// accuracy.math, length.cosine and the spec's `math:` section (rewards/rules_accuracy.cpp).
#include <catch2/catch.hpp>

#include <cmath>
#include <numbers>

#include <nlohmann/json.hpp>

#include "rewards/rule.h"

namespace {

using nlohmann::json;
using rl::rewards::RuleContext;
using rl::rewards::RuleInput;
using rl::rewards::RuleOutcome;
using rl::rewards::Sample;
using rl::rewards::SampleScratch;
using rl::rewards::ScoreStatus;

struct Fixture {
  rl::rewards::math::Verifier verifier;
  RuleContext context{{}, &verifier};

  RuleOutcome Score(rl::rewards::RuleFactory factory, const json& params, const Sample& sample,
                    SampleScratch* scratch = nullptr) {
    rl::rewards::SpecError error;
    auto rule = factory(params, context, &error);
    INFO(error.path << ": " << error.message);
    REQUIRE(rule);
    SampleScratch local;
    RuleInput input{sample, sample.completion, false};
    return rule->Score(input, scratch ? *scratch : local);
  }
};

Sample MakeSample(std::string_view completion, std::optional<std::string_view> gold,
                  std::optional<int64_t> tokens = std::nullopt) {
  Sample s;
  s.completion = completion;
  s.gold = gold;
  s.completion_tokens = tokens;
  return s;
}

double Cosine(double lo, double hi, double progress) {
  return lo + (hi - lo) * 0.5 * (1 + std::cos(progress * std::numbers::pi));
}

}  // namespace

TEST_CASE("accuracy.math scores correct 1 and incorrect 0 by default", "[rules][math]") {
  Fixture f;
  auto& make = rl::rewards::MakeAccuracyMathRule;
  CHECK(f.Score(make, json::object(), MakeSample("<answer>\\boxed{4}</answer>", "4")).value == 1);
  CHECK(f.Score(make, json::object(), MakeSample("<answer>\\boxed{5}</answer>", "4")).value == 0);
  // No answer and an unreadable answer are wrong answers, not unscorable samples.
  RuleOutcome none = f.Score(make, json::object(), MakeSample("I give up", "4"));
  CHECK(none.status == ScoreStatus::kOk);
  CHECK(none.value == 0);
  RuleOutcome garbled = f.Score(make, json::object(), MakeSample("\\boxed{)(}", "4"));
  CHECK(garbled.status == ScoreStatus::kOk);
  CHECK(garbled.value == 0);
}

TEST_CASE("accuracy.math values are configurable (DAPO's +1/-1)", "[rules][math]") {
  Fixture f;
  json dapo = {{"correct", 1}, {"incorrect", -1}};
  auto& make = rl::rewards::MakeAccuracyMathRule;
  CHECK(f.Score(make, dapo, MakeSample("\\boxed{4}", "4")).value == 1);
  CHECK(f.Score(make, dapo, MakeSample("\\boxed{3}", "4")).value == -1);
  CHECK(f.Score(make, dapo, MakeSample("nothing", "4")).value == -1);
}

TEST_CASE("accuracy.math reports what it cannot score", "[rules][math]") {
  Fixture f;
  auto& make = rl::rewards::MakeAccuracyMathRule;
  RuleOutcome missing = f.Score(make, json::object(), MakeSample("\\boxed{4}", std::nullopt));
  CHECK(missing.status == ScoreStatus::kMissingGold);
  RuleOutcome invalid = f.Score(make, json::object(), MakeSample("\\boxed{4}", "\\frac{"));
  CHECK(invalid.status == ScoreStatus::kInvalidGold);
  CHECK(invalid.detail.find("invalid_gold") != std::string::npos);
  RuleOutcome budget = f.Score(make, json::object(), MakeSample("\\boxed{4}", "(10^{100})!"));
  CHECK(budget.status == ScoreStatus::kBudgetExceeded);
}

TEST_CASE("rule parameters are validated", "[rules][math]") {
  Fixture f;
  rl::rewards::SpecError error;
  // The key at fault comes back as data, relative to the rule's params.
  CHECK_FALSE(rl::rewards::MakeAccuracyMathRule({{"corect", 1}}, f.context, &error));
  CHECK(error.path == "corect");
  CHECK_FALSE(rl::rewards::MakeAccuracyMathRule({{"correct", "yes"}}, f.context, &error));
  CHECK(error.path == "correct");
  CHECK_FALSE(rl::rewards::MakeLengthCosineRule({{"max_len", 0}}, f.context, &error));
  CHECK(error.path == "max_len");
  CHECK_FALSE(rl::rewards::MakeLengthCosineRule({{"unit", "words"}}, f.context, &error));
  CHECK(error.path == "unit");
  RuleContext no_verifier;
  CHECK_FALSE(rl::rewards::MakeAccuracyMathRule(json::object(), no_verifier, &error));
}

TEST_CASE("length.cosine follows open-r1's schedule", "[rules][math]") {
  Fixture f;
  auto& make = rl::rewards::MakeLengthCosineRule;
  // open-r1 defaults: wrong in [-1, -0.5], correct in [0.5, 1], max_len 1000.
  CHECK(f.Score(make, json::object(), MakeSample("\\boxed{4}", "4", 0)).value == Approx(1.0));
  CHECK(f.Score(make, json::object(), MakeSample("\\boxed{4}", "4", 500)).value ==
        Approx(Cosine(0.5, 1.0, 0.5)));
  CHECK(f.Score(make, json::object(), MakeSample("\\boxed{4}", "4", 1000)).value == Approx(0.5));
  CHECK(f.Score(make, json::object(), MakeSample("\\boxed{4}", "4", 5000)).value == Approx(0.5));
  // Short wrong answers are punished hardest.
  CHECK(f.Score(make, json::object(), MakeSample("\\boxed{3}", "4", 0)).value == Approx(-1.0));
  CHECK(f.Score(make, json::object(), MakeSample("\\boxed{3}", "4", 250)).value ==
        Approx(Cosine(-0.5, -1.0, 0.25)));
  CHECK(f.Score(make, json::object(), MakeSample("\\boxed{3}", "4", 1000)).value == Approx(-0.5));
  json custom = {{"min_value_correct", 0.0}, {"max_value_correct", 2.0}, {"max_len", 100}};
  CHECK(f.Score(make, custom, MakeSample("\\boxed{4}", "4", 50)).value == Approx(1.0));
}

TEST_CASE("length.cosine needs a token count unless told to count characters", "[rules][math]") {
  Fixture f;
  auto& make = rl::rewards::MakeLengthCosineRule;
  RuleOutcome missing = f.Score(make, json::object(), MakeSample("\\boxed{4}", "4"));
  CHECK(missing.status == ScoreStatus::kMissingTokenCount);
  std::string text = "\\boxed{4}";  // 9 bytes
  RuleOutcome chars = f.Score(make, {{"unit", "chars"}, {"max_len", 18}}, MakeSample(text, "4"));
  CHECK(chars.status == ScoreStatus::kOk);
  CHECK(chars.value == Approx(Cosine(0.5, 1.0, 0.5)));
  CHECK(f.Score(make, json::object(), MakeSample("\\boxed{4}", std::nullopt, 10)).status ==
        ScoreStatus::kMissingGold);
  CHECK(f.Score(make, json::object(), MakeSample("\\boxed{4}", "\\frac{", 10)).status ==
        ScoreStatus::kInvalidGold);
}

TEST_CASE("the answer check runs once per sample and is shared", "[rules][math]") {
  Fixture f;
  Sample sample = MakeSample("\\boxed{4}", "4", 100);
  SampleScratch scratch;
  f.Score(rl::rewards::MakeAccuracyMathRule, json::object(), sample, &scratch);
  REQUIRE(scratch.answer_check);
  CHECK(scratch.answer_check->verdict == rl::rewards::math::Verdict::kCorrect);
  // A planted verdict proves the second rule reads the cached check instead of re-running it.
  scratch.answer_check->verdict = rl::rewards::math::Verdict::kIncorrect;
  RuleOutcome cosine = f.Score(rl::rewards::MakeLengthCosineRule, json::object(), sample, &scratch);
  CHECK(cosine.value < 0);
}

TEST_CASE("ParseVerifierOptions reads the math section strictly", "[rules][math]") {
  rl::rewards::math::VerifierOptions options;
  rl::rewards::SpecError error;
  json math = {{"precision", 4},
               {"rounded_decimal_digits", 3},
               {"time_budget_ms", 20},
               {"node_budget", 5000},
               {"bit_budget", 4096},
               {"extraction", {"boxed", "number"}},
               {"strict", false},
               {"interval_accepts_inequality", true},
               {"percent_accepts_bare_number", false},
               {"number_accepts_percent", true},
               {"choices", {"A", "B"}},
               {"choices_ignore_case", true}};
  REQUIRE(rl::rewards::ParseVerifierOptions(math, &options, &error));
  CHECK(options.precision == 4);
  CHECK(options.rounded_decimal_digits == 3);
  CHECK(options.time_budget_ms == 20);
  CHECK(options.node_budget == 5000);
  CHECK(options.bit_budget == 4096);
  CHECK(options.extraction ==
        std::vector{rl::rewards::math::Extraction::kBoxed, rl::rewards::math::Extraction::kNumber});
  CHECK_FALSE(options.strict);
  CHECK(options.interval_accepts_inequality);
  CHECK_FALSE(options.percent_accepts_bare_number);
  CHECK(options.number_accepts_percent);
  CHECK(options.choices == std::vector<std::string>{"A", "B"});
  CHECK(options.choices_ignore_case);
  CHECK(rl::rewards::ParseVerifierOptions(json(), &options, &error));  // absent section

  auto fails = [&](const json& bad, std::string_view key) {
    rl::rewards::math::VerifierOptions o;
    rl::rewards::SpecError e;
    CHECK_FALSE(rl::rewards::ParseVerifierOptions(bad, &o, &e));
    INFO(e.message);
    CHECK(e.path == key);  // the key at fault, as data
  };
  fails({{"precison", 6}}, "math.precison");
  fails({{"precision", "six"}}, "math.precision");
  fails({{"precision", -1}}, "math.precision");
  fails({{"rounded_decimal_digits", -1}}, "math.rounded_decimal_digits");
  fails({{"time_budget_ms", 0}}, "math.time_budget_ms");
  fails({{"node_budget", 1.5}}, "math.node_budget");
  fails({{"extraction", {"boxed", "guess"}}}, "math.extraction");
  fails({{"extraction", json::array()}}, "math.extraction");
  fails({{"strict", "yes"}}, "math.strict");
  fails({{"choices", {1, 2}}}, "math.choices");
  fails(json::array(), "math");
}
