// rewards/rule.h: the interface every rule implements (internal to the rewards library).
// A Reward prepares a RuleInput once per sample and calls each of its rules in spec order.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

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

// A rule's own score: value meaningful only when status == kOk. A rule that scored returns
// its value (`return {0.5};`); one that could not returns {0, status, why}.
struct RuleOutcome {
  RuleOutcome() = default;
  RuleOutcome(double scored) : value(scored) {}  // implicit: `return {v};` is a score
  RuleOutcome(double value, ScoreStatus status, std::string detail)
      : value(value), status(status), detail(std::move(detail)) {}

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

// A problem in a spec, as data: the key path where it is ("rules[2].weight", or "cache_length"
// relative to a rule's params; empty for the whole) and what was expected there. The reward
// adds the file and line when it reports it.
struct SpecError {
  std::string path;
  std::string message;
};

// A factory validates the rule's `params` object (an empty object when none were given) and
// returns null with *error naming the offending key (relative to the params) when they are
// wrong.
using RuleFactory = std::unique_ptr<Rule> (*)(const nlohmann::json& params,
                                              const RuleContext& context, SpecError* error);

// Reads a rule's `params` object key by key with type checks. The first problem is kept as a
// SpecError at that key (the composite prefixes the spec path and line); keys that no read
// asked for are reported by Finish, naming the nearest known key. Not thread-safe: one per
// factory call.
class RuleParams {
 public:
  explicit RuleParams(const nlohmann::json& params);
  RuleParams(const RuleParams&) = delete;  // holds a reference to the caller's params
  RuleParams& operator=(const RuleParams&) = delete;

  // Each getter returns the value of `key`, or `default_value` when the key is absent.
  double Number(std::string_view key, double default_value);  // finite number
  int64_t Integer(std::string_view key, int64_t default_value);
  bool Bool(std::string_view key, bool default_value);
  std::string String(std::string_view key, std::string default_value);
  // Like Number/Integer, but an absent key is an error.
  double RequiredNumber(std::string_view key);
  int64_t RequiredInteger(std::string_view key);
  // Records a problem with `key` (range checks done by the rule); the first one wins.
  void Fail(std::string_view key, std::string_view expected);
  // True when every key was known and well typed; otherwise false with *error set.
  bool Finish(SpecError* error);

 private:
  const nlohmann::json* Find(std::string_view key);
  const nlohmann::json& params_;
  std::vector<std::string> known_;
  std::optional<SpecError> error_;
};

// Factories of the rules in rules_format.cpp and rules_shaping.cpp.
std::unique_ptr<Rule> MakeFormatThinkAnswerRule(const nlohmann::json& params,
                                                const RuleContext& context, SpecError* error);
std::unique_ptr<Rule> MakeFormatTagsRule(const nlohmann::json& params,
                                         const RuleContext& context, SpecError* error);
std::unique_ptr<Rule> MakeFormatTagCountRule(const nlohmann::json& params,
                                             const RuleContext& context, SpecError* error);
std::unique_ptr<Rule> MakeFormatBoxedRule(const nlohmann::json& params,
                                          const RuleContext& context, SpecError* error);
std::unique_ptr<Rule> MakeLengthSoftOverlongRule(const nlohmann::json& params,
                                                 const RuleContext& context, SpecError* error);
std::unique_ptr<Rule> MakeRepetitionNgramRule(const nlohmann::json& params,
                                              const RuleContext& context, SpecError* error);
std::unique_ptr<Rule> MakeReasoningStepsRule(const nlohmann::json& params,
                                             const RuleContext& context, SpecError* error);

// Looks up a rule by name; null when unknown.
RuleFactory FindRuleFactory(std::string_view name);
// Every registered rule name, in registration order, for "unknown rule" messages.
std::span<const std::string_view> KnownRuleNames();

// Defined in rules_accuracy.cpp (needs the math engine).
std::unique_ptr<Rule> MakeAccuracyMathRule(const nlohmann::json& params,
                                           const RuleContext& context, SpecError* error);
std::unique_ptr<Rule> MakeLengthCosineRule(const nlohmann::json& params,
                                           const RuleContext& context, SpecError* error);
// Converts YAML text to JSON (plain scalars typed as YAML 1.2 core: null, bool, int, float;
// quoted scalars stay strings). *lines receives the 1-based source line of every key path
// ("rules", "rules[2]", "rules[2].weight"). False with *error ("origin:line:col: ...") on
// malformed YAML or duplicate keys.
using SpecLines = std::vector<std::pair<std::string, int>>;
bool YamlToJson(std::string_view yaml, std::string_view origin, nlohmann::json* out,
                SpecLines* lines, std::string* error);

// "a list", "a mapping", "a number", ... for "expected X, got Y" messages. Never prints the
// value itself: a spec's values may nest deeper than a recursive dump can go.
std::string JsonTypeName(const nlohmann::json& value);

// Parses the spec's `math:` section (null: absent) into verifier options through their schema
// (VisitVerifierOptions in rules_accuracy.cpp); false with *error at "math.<key>" on bad input.
bool ParseVerifierOptions(const nlohmann::json& math, math::VerifierOptions* options,
                          SpecError* error);

}  // namespace rl::rewards
