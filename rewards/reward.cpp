// The composite Reward: spec validation, special-token stripping, prefilled-think detection,
// and scoring one sample or a batch.
#include "rewards/reward.h"

#include <omp.h>

#include <array>
#include <cmath>
#include <fstream>
#include <new>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "common/config_json.h"
#include "common/names.h"
#include "rewards/rule.h"

namespace rl::rewards {

std::string_view ToString(ScoreStatus status) {
  switch (status) {
    case ScoreStatus::kOk: return "ok";
    case ScoreStatus::kMissingGold: return "missing_gold";
    case ScoreStatus::kMissingTokenCount: return "missing_token_count";
    case ScoreStatus::kInvalidGold: return "invalid_gold";
    case ScoreStatus::kBudgetExceeded: return "budget_exceeded";
    case ScoreStatus::kRuleError: return "rule_error";
  }
  return "unknown";
}

std::string JsonTypeName(const nlohmann::json& value) {
  using nlohmann::json;
  switch (value.type()) {
    case json::value_t::null: return "nothing";
    case json::value_t::boolean: return "a boolean";
    case json::value_t::string: return "a string";
    case json::value_t::array: return "a list";
    case json::value_t::object: return "a mapping";
    default: return value.is_number() ? "a number" : "something else";
  }
}

namespace {

using nlohmann::json;

constexpr std::array<std::string_view, 4> kDefaultSpecialTokens = {"<|im_end|>", "<|endoftext|>",
                                                                   "<|eot_id|>", "</s>"};

const common::Choices<PrefilledThink> kPrefilledThink = {
    {"auto", PrefilledThink::kAuto}, {"always", PrefilledThink::kAlways}, {"never", PrefilledThink::kNever}};
const common::Choices<OnUnscorable> kOnUnscorable = {{"skip", OnUnscorable::kSkip},
                                                     {"zero", OnUnscorable::kZero}};

// A spec's settings as a schema (common/config_schema.h). `math` and `rules` stay JSON here:
// the verifier options and each rule's parameters are read by schemas of their own.
struct SpecSettings {
  common::StringList special_tokens{kDefaultSpecialTokens.begin(), kDefaultSpecialTokens.end()};
  TagNames tags;
  PrefilledThink prefilled_think = PrefilledThink::kAuto;
  OnUnscorable on_unscorable = OnUnscorable::kSkip;
  common::JsonSubtree math, rules;
};

template <class V>
void VisitSpec(V& v, SpecSettings& s) {
  v.Field("special_tokens", s.special_tokens);
  v.Section("tags", [&] {
    v.Field("think", s.tags.think);
    v.Field("answer", s.tags.answer);
  });
  v.Choice("prefilled_think", s.prefilled_think, kPrefilledThink);
  v.Choice("on_unscorable", s.on_unscorable, kOnUnscorable);
  v.Field("math", s.math);
  v.Field("rules", s.rules);
}

// One entry of the spec's `rules` list.
struct RuleEntry {
  std::string name;
  double weight = 1;
  common::JsonSubtree params;
};

template <class V>
void VisitRuleEntry(V& v, RuleEntry& r) {
  v.Field("name", r.name);
  v.Field("weight", r.weight);
  v.Field("params", r.params);
}

// Reads `node` (named `path` in errors, "" at the top) with visit(reader); false with *error
// on the first problem.
template <class Visit>
bool ReadSchema(const json& node, const std::string& path, Visit&& visit, SpecError* error) {
  try {
    common::JsonReader reader(node, path);
    visit(reader);
    reader.CheckUnknownKeys();
    return true;
  } catch (const common::ConfigError& e) {
    *error = {e.path(), e.detail()};
    return false;
  }
}

bool IsTagName(const std::string& name) {
  if (name.empty()) return false;
  for (char c : name) {
    if (c == '<' || c == '>' || c == '/' || c == ' ' || c == '\t' || c == '\n' || c == '\r')
      return false;
  }
  return true;
}

// A rule factory reports its error relative to the rule's params; the spec error names the
// full path.
SpecError RuleParamsError(size_t index, std::string_view rule_name, const SpecError& error) {
  const std::string params_path = "rules[" + std::to_string(index) + "].params";
  if (error.path.empty()) return SpecError{params_path, std::string(rule_name) + ": " + error.message};
  return SpecError{params_path + "." + error.path, error.message + " (rule " + std::string(rule_name) + ")"};
}

// "origin:line: key 'path': message", the line taken from the path or its nearest ancestor.
std::string FormatSpecError(std::string_view origin, const SpecLines* lines,
                            const SpecError& error) {
  std::string where(origin);
  if (lines != nullptr) {
    std::string path = error.path;
    while (!path.empty()) {
      auto it = std::find_if(lines->begin(), lines->end(),
                             [&](const auto& e) { return e.first == path; });
      if (it != lines->end()) {
        where += ":" + std::to_string(it->second);
        break;
      }
      size_t cut = path.find_last_of(".[");
      path = cut == std::string::npos ? std::string() : path.substr(0, cut);
    }
  }
  if (error.path.empty()) return where + ": " + error.message;
  return where + ": key '" + error.path + "': " + error.message;
}

bool EndsWith(std::string_view text, std::string_view suffix) {
  return text.size() >= suffix.size() && text.substr(text.size() - suffix.size()) == suffix;
}

std::string_view TrimRight(std::string_view text) {
  size_t end = text.find_last_not_of(" \t\r\n\f\v");
  return end == std::string_view::npos ? std::string_view() : text.substr(0, end + 1);
}

}  // namespace

struct Reward::Impl {
  struct CompiledRule {
    std::string name;
    double weight = 1;
    std::unique_ptr<Rule> rule;
  };

  std::vector<std::string> special_tokens;
  TagNames tags;
  std::string think_open;  // "<think>", for prefilled-think detection
  PrefilledThink prefilled_think = PrefilledThink::kAuto;
  OnUnscorable on_unscorable = OnUnscorable::kSkip;
  std::unique_ptr<math::Verifier> verifier;
  std::vector<CompiledRule> rules;
  std::vector<std::string> rule_names;
  json spec;

  // Validates `spec` and compiles its rules; null with *error on the first problem.
  static std::unique_ptr<Impl> Build(const json& spec, SpecError* error);

  bool ApplySettings(const SpecSettings& settings, SpecError* error);
  bool ReadMath(const json* math, SpecError* error);
  bool ReadRules(const json* rules, SpecError* error);

  bool IsPrefilled(std::string_view prompt) const {
    switch (prefilled_think) {
      case PrefilledThink::kAlways: return true;
      case PrefilledThink::kNever: return false;
      case PrefilledThink::kAuto: return EndsWith(TrimRight(prompt), think_open);
    }
    return false;
  }
};

std::unique_ptr<Reward::Impl> Reward::Impl::Build(const json& spec, SpecError* error) {
  if (!spec.is_object()) {
    *error = {"", "expected a mapping with a 'rules' list, got " + JsonTypeName(spec)};
    return nullptr;
  }
  SpecSettings settings;
  if (!ReadSchema(spec, "", [&](common::JsonReader& reader) { VisitSpec(reader, settings); }, error)) {
    return nullptr;
  }
  auto impl = std::make_unique<Impl>();
  impl->spec = json::object();
  if (!impl->ApplySettings(settings, error) || !impl->ReadMath(settings.math.node, error) ||
      !impl->ReadRules(settings.rules.node, error)) {
    return nullptr;
  }
  // spec() is printed as JSON (/health, --print-config), which needs UTF-8 strings; YAML text
  // (yaml-cpp does not check) may hold other bytes.
  try {
    (void)impl->spec.dump();
  } catch (const json::type_error& e) {
    *error = {"", std::string("strings must be valid UTF-8: ") + e.what()};
    return nullptr;
  }
  return impl;
}

bool Reward::Impl::ApplySettings(const SpecSettings& settings, SpecError* error) {
  for (size_t i = 0; i < settings.special_tokens.size(); ++i) {
    if (settings.special_tokens[i].empty()) {
      *error = {"special_tokens[" + std::to_string(i) + "]", "expected a non-empty string"};
      return false;
    }
  }
  for (auto [key, name] : {std::pair{"think", &settings.tags.think}, std::pair{"answer", &settings.tags.answer}}) {
    if (!IsTagName(*name)) {
      *error = {std::string("tags.") + key, "expected a tag name without '<', '>', '/' or spaces"};
      return false;
    }
  }
  if (settings.tags.think == settings.tags.answer) {
    *error = {"tags", "the think and answer tags must differ"};
    return false;
  }
  special_tokens = settings.special_tokens;
  tags = settings.tags;
  think_open = "<" + tags.think + ">";
  prefilled_think = settings.prefilled_think;
  on_unscorable = settings.on_unscorable;
  // The compiled spec states every setting, defaults included.
  const auto name_of = [](const auto& choices, auto value) {
    for (const auto& [name, choice] : choices) {
      if (choice == value) return std::string(name);
    }
    return std::string();
  };
  this->spec["special_tokens"] = special_tokens;
  this->spec["tags"] = {{"think", tags.think}, {"answer", tags.answer}};
  this->spec["prefilled_think"] = name_of(kPrefilledThink, prefilled_think);
  this->spec["on_unscorable"] = name_of(kOnUnscorable, on_unscorable);
  return true;
}

bool Reward::Impl::ReadMath(const json* given, SpecError* error) {
  // Values are copied into this->spec only once validated: nlohmann copies recursively, and an
  // invalid value may be nested deep enough to overflow the stack.
  static const json kNoOptions = json::object();
  const json* math = given != nullptr ? given : &kNoOptions;
  if (!math->is_object()) {
    *error = {"math", "expected a mapping of verifier options, got " + JsonTypeName(*math)};
    return false;
  }
  math::VerifierOptions options;
  if (!ParseVerifierOptions(*math, &options, error)) return false;
  verifier = std::make_unique<math::Verifier>(options);
  this->spec["math"] = *math;
  return true;
}

bool Reward::Impl::ReadRules(const json* list, SpecError* error) {
  if (list == nullptr || !list->is_array() || list->empty()) {
    *error = {"rules", list == nullptr ? "missing; expected a non-empty list of rules"
                                       : "expected a non-empty list of rules"};
    return false;
  }
  RuleContext context{tags, verifier.get()};
  json compiled = json::array();
  for (size_t i = 0; i < list->size(); ++i) {
    const std::string path = "rules[" + std::to_string(i) + "]";
    RuleEntry entry;
    if (!ReadSchema((*list)[i], path, [&](common::JsonReader& reader) { VisitRuleEntry(reader, entry); },
                    error)) {
      return false;
    }
    const std::string& rule_name = entry.name;
    if (rule_name.empty()) {
      *error = {path + ".name", "expected a rule name (one of: " + common::JoinNames(KnownRuleNames()) + ")"};
      return false;
    }
    RuleFactory factory = FindRuleFactory(rule_name);
    if (factory == nullptr) {
      *error = {path + ".name",
                "unknown rule '" + rule_name + "'; " + common::DidYouMean(rule_name, KnownRuleNames(), "known")};
      return false;
    }
    for (const CompiledRule& earlier : rules) {
      if (earlier.name == rule_name) {
        *error = {path + ".name", "rule '" + rule_name + "' is listed twice"};
        return false;
      }
    }
    static const json kNoParams = json::object();
    const json* params = entry.params.node != nullptr ? entry.params.node : &kNoParams;
    if (!params->is_object()) {  // copied into this->spec once the factory accepts it
      *error = {path + ".params", "expected a mapping of parameters, got " + JsonTypeName(*params)};
      return false;
    }
    SpecError factory_error;
    std::unique_ptr<Rule> rule = factory(*params, context, &factory_error);
    if (rule == nullptr) {
      *error = RuleParamsError(i, rule_name, factory_error);
      return false;
    }
    rules.push_back({rule_name, entry.weight, std::move(rule)});
    rule_names.push_back(rule_name);
    compiled.push_back({{"name", rule_name}, {"weight", entry.weight}, {"params", *params}});
  }
  this->spec["rules"] = std::move(compiled);
  return true;
}

Reward::Reward(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Reward::~Reward() = default;

std::unique_ptr<Reward> Reward::FromJson(const nlohmann::json& spec, std::string* error,
                                         std::string_view origin) {
  SpecError spec_error;
  std::unique_ptr<Impl> impl = Impl::Build(spec, &spec_error);
  if (impl == nullptr) {
    if (error != nullptr) *error = FormatSpecError(origin, nullptr, spec_error);
    return nullptr;
  }
  return std::unique_ptr<Reward>(new Reward(std::move(impl)));
}

std::unique_ptr<Reward> Reward::FromYamlText(std::string_view yaml, std::string* error,
                                             std::string_view origin) {
  std::string local_error;
  if (error == nullptr) error = &local_error;
  json spec;
  SpecLines lines;
  if (!YamlToJson(yaml, origin, &spec, &lines, error)) return nullptr;
  SpecError spec_error;
  std::unique_ptr<Impl> impl = Impl::Build(spec, &spec_error);
  if (impl == nullptr) {
    *error = FormatSpecError(origin, &lines, spec_error);
    return nullptr;
  }
  return std::unique_ptr<Reward>(new Reward(std::move(impl)));
}

std::unique_ptr<Reward> Reward::FromYamlFile(const std::string& path, std::string* error) {
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    if (error != nullptr) *error = path + ": cannot open the reward spec";
    return nullptr;
  }
  std::stringstream text;
  text << file.rdbuf();
  return FromYamlText(text.str(), error, path);
}

std::string_view Reward::StripSpecialTokens(std::string_view completion) const {
  for (bool stripped = true; stripped;) {
    stripped = false;
    std::string_view trimmed = TrimRight(completion);
    for (const std::string& token : impl_->special_tokens) {
      if (EndsWith(trimmed, token)) {
        completion = trimmed.substr(0, trimmed.size() - token.size());
        stripped = true;
        break;
      }
    }
  }
  return completion;
}

RewardResult Reward::Score(const Sample& sample) const {
  RewardResult result;
  result.components.reserve(impl_->rules.size());
  const RuleInput input{sample, StripSpecialTokens(sample.completion),
                        impl_->IsPrefilled(sample.prompt)};
  SampleScratch scratch;
  double total = 0;
  bool scorable = true;
  for (const Impl::CompiledRule& compiled : impl_->rules) {
    RuleOutcome outcome;
    try {
      outcome = compiled.rule->Score(input, scratch);
    } catch (const std::bad_alloc&) {
      outcome = {0, ScoreStatus::kBudgetExceeded, "out of memory"};
    } catch (const std::exception& e) {
      outcome = {0, ScoreStatus::kRuleError, e.what()};
    }
    if (outcome.status != ScoreStatus::kOk) {
      if (result.status == ScoreStatus::kOk) result.status = outcome.status;
      if (impl_->on_unscorable == OnUnscorable::kSkip) scorable = false;
      outcome.value = 0;
    }
    total += compiled.weight * outcome.value;
    result.components.push_back(
        {compiled.name, compiled.weight, outcome.value, outcome.status, std::move(outcome.detail)});
  }
  if (scorable) result.total = total;
  result.answer_check = std::move(scratch.answer_check);
  return result;
}

std::vector<RewardResult> Reward::ScoreBatch(std::span<const Sample> samples, int threads) const {
  std::vector<RewardResult> results(samples.size());
  const int64_t count = static_cast<int64_t>(samples.size());
  const int team = threads > 0 ? threads : omp_get_max_threads();
  // Each result depends only on its own sample, so any schedule gives the same results.
#pragma omp parallel for num_threads(team) schedule(dynamic, 16) if (team > 1 && count > 16)
  for (int64_t i = 0; i < count; ++i) results[i] = Score(samples[i]);
  return results;
}

const std::vector<std::string>& Reward::rule_names() const { return impl_->rule_names; }

const nlohmann::json& Reward::spec() const { return impl_->spec; }

}  // namespace rl::rewards
