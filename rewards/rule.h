// rewards/rule.h: the interface every rule implements (internal to the rewards library).
// A Reward prepares a RuleInput once per sample and calls each of its rules in spec order.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "rewards/math/verify.h"
#include "rewards/reward.h"

namespace rl::rewards {

struct TagNames {
  std::string think = "think";
  std::string answer = "answer";
};

// What a rule sees of one sample; built by the composite, valid for one Score call.
struct RuleInput {
  const Sample& sample;
  std::string_view completion;  // trailing special tokens removed
  bool prefilled_think;         // the completion starts inside <think>
};

// Work shared by the rules of one Reward for one sample (not shared across threads): the
// answer check runs once even when accuracy.math and length.cosine both need it.
struct SampleScratch {
  std::optional<math::CheckResult> answer_check;
};

// A rule's own score: value meaningful only when status == kOk.
struct RuleOutcome {
  double value = 0;
  ScoreStatus status = ScoreStatus::kOk;
  std::string detail;
};

// Construction-time context shared by the rules of one Reward.
struct RuleContext {
  TagNames tags;
  const math::Verifier* verifier = nullptr;  // owned by the Reward, outlives its rules
};

// Immutable after construction; Score is called concurrently from many threads.
class Rule {
 public:
  virtual ~Rule() = default;
  virtual RuleOutcome Score(const RuleInput& input, SampleScratch& scratch) const = 0;
};

// A factory validates the rule's `params` object (an empty object when none were given) and
// returns null with *error naming the offending key when they are wrong.
using RuleFactory = std::unique_ptr<Rule> (*)(const nlohmann::json& params,
                                              const RuleContext& context, std::string* error);

// Looks up a rule by name; null when unknown.
RuleFactory FindRuleFactory(std::string_view name);
// Every registered rule name, for "unknown rule, expected one of …" messages.
std::string_view KnownRuleNames();

// Defined in rules_accuracy.cpp (needs the math engine).
std::unique_ptr<Rule> MakeAccuracyMathRule(const nlohmann::json& params,
                                           const RuleContext& context, std::string* error);
std::unique_ptr<Rule> MakeLengthCosineRule(const nlohmann::json& params,
                                           const RuleContext& context, std::string* error);
// Parses the spec's `math:` section into verifier options; false with *error on bad input.
bool ParseVerifierOptions(const nlohmann::json& math, math::VerifierOptions* options,
                          std::string* error);

}  // namespace rl::rewards
