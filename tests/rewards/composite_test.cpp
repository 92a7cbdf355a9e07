// The composite Reward: weights, statuses, on_unscorable, ScoreBatch, spec errors.
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/rewards/test_util.h"

using namespace rl::rewards;
using namespace rl::rewards::testing;

namespace {

std::string SpecError(const std::string& yaml) {
  std::string error;
  std::unique_ptr<Reward> reward = Reward::FromYamlText(yaml, &error, "spec.yaml");
  CHECK(reward == nullptr);
  return error;
}

}  // namespace

TEST_CASE("composite: weighted sum of components in spec order", "[composite]") {
  auto reward = MakeReward(
      "rules:\n"
      "  - {name: format.think_answer, weight: 2}\n"
      "  - {name: format.tags, weight: 0.5}\n"
      "  - {name: repetition.ngram, weight: 1, params: {ngram_size: 1, max_penalty: -1}}\n");
  REQUIRE(reward->rule_names() ==
          std::vector<std::string>{"format.think_answer", "format.tags", "repetition.ngram"});
  RewardResult r = ScoreText(*reward, "<think>a</think><answer>a</answer>");
  REQUIRE(r.status == ScoreStatus::kOk);
  REQUIRE(r.components.size() == 3);
  CHECK(r.components[0].value == 1);
  CHECK(r.components[0].weight == 2);
  CHECK(r.components[1].value == 1);
  CHECK(r.components[2].rule == "repetition.ngram");
  CHECK(r.components[2].value == 0);  // one word, one unigram
  CHECK(*r.total == Approx(2 * 1 + 0.5 * 1));
}

TEST_CASE("composite: accuracy.math with the r1 spec", "[composite]") {
  std::string error;
  auto reward = Reward::FromYamlFile("../configs/rewards/r1.yaml", &error);
  INFO(error);
  REQUIRE(reward != nullptr);
  RewardResult right =
      ScoreText(*reward, "<think>2+2</think><answer>\\boxed{4}</answer><|im_end|>", "", {}, "4");
  CHECK(right.status == ScoreStatus::kOk);
  CHECK(*right.total == 2);
  CHECK(right.answer_check.has_value());
  RewardResult wrong =
      ScoreText(*reward, "<think>2+2</think><answer>\\boxed{5}</answer>", "", {}, "4");
  CHECK(*wrong.total == 1);
  RewardResult no_gold = ScoreText(*reward, "<think>2+2</think><answer>4</answer>");
  CHECK(no_gold.status == ScoreStatus::kMissingGold);
  CHECK_FALSE(no_gold.total.has_value());
  CHECK(no_gold.components[0].status == ScoreStatus::kOk);
  CHECK(no_gold.components[1].status == ScoreStatus::kMissingGold);
}

TEST_CASE("composite: on_unscorable skip versus zero", "[composite]") {
  const std::string rules =
      "rules:\n"
      "  - {name: format.think_answer}\n"
      "  - {name: length.soft_overlong, params: {max_length: 10, cache_length: 5}}\n";
  auto skip = MakeReward("on_unscorable: skip\n" + rules);
  auto zero = MakeReward("on_unscorable: zero\n" + rules);
  const std::string text = "<think>t</think><answer>4</answer>";
  RewardResult skipped = ScoreText(*skip, text);
  CHECK(skipped.status == ScoreStatus::kMissingTokenCount);
  CHECK_FALSE(skipped.total.has_value());
  RewardResult zeroed = ScoreText(*zero, text);
  CHECK(zeroed.status == ScoreStatus::kMissingTokenCount);  // still reported
  REQUIRE(zeroed.total.has_value());
  CHECK(*zeroed.total == 1);
  CHECK(zeroed.components[1].value == 0);
  CHECK(zeroed.components[1].status == ScoreStatus::kMissingTokenCount);
  // With the token count both agree.
  CHECK(*ScoreText(*skip, text, "", 9).total == Approx(1 - 0.8));
  CHECK(*ScoreText(*zero, text, "", 9).total == Approx(1 - 0.8));
}

TEST_CASE("composite: ScoreBatch gives the same results for 1 and N threads",
          "[composite][batch]") {
  auto reward = MakeReward(
      "rules:\n"
      "  - {name: format.think_answer}\n"
      "  - {name: format.tags}\n"
      "  - {name: format.tag_count}\n"
      "  - {name: format.boxed}\n"
      "  - {name: repetition.ngram}\n"
      "  - {name: reasoning.steps}\n"
      "  - {name: length.soft_overlong, params: {max_length: 600, cache_length: 200}}\n"
      "  - {name: accuracy.math}\n");
  std::vector<std::string> completions;
  std::vector<std::string> golds;
  for (int i = 0; i < 3000; ++i) {
    std::string thought;
    for (int k = 0; k < i % 17; ++k)
      thought += "Step " + std::to_string(k) + ": add " + std::to_string(i * k) + ".\n";
    const int answer = (i % 5 == 0) ? i + 1 : i;
    std::string c = (i % 7 == 0 ? "" : "<think>\n") + thought + "\n</think>\n<answer>\n\\boxed{" +
                    std::to_string(answer) + "}\n</answer>" + (i % 3 == 0 ? "<|im_end|>" : "");
    completions.push_back(c);
    golds.push_back(std::to_string(i));
  }
  std::vector<Sample> samples(completions.size());
  for (size_t i = 0; i < samples.size(); ++i) {
    samples[i].completion = completions[i];
    if (i % 11 != 0) samples[i].gold = golds[i];
    if (i % 13 != 0) samples[i].completion_tokens = static_cast<int64_t>(completions[i].size() / 2);
  }
  std::vector<RewardResult> one = reward->ScoreBatch(samples, 1);
  for (int threads : {2, 4, 0}) {
    std::vector<RewardResult> many = reward->ScoreBatch(samples, threads);
    REQUIRE(many.size() == one.size());
    for (size_t i = 0; i < one.size(); ++i) {
      INFO("sample " << i << ", threads " << threads);
      REQUIRE(many[i].status == one[i].status);
      REQUIRE(many[i].total == one[i].total);
      for (size_t k = 0; k < one[i].components.size(); ++k) {
        REQUIRE(many[i].components[k].value == one[i].components[k].value);
        REQUIRE(many[i].components[k].status == one[i].components[k].status);
      }
    }
  }
  // And the batch equals scoring one at a time.
  for (size_t i = 0; i < samples.size(); i += 97)
    CHECK(reward->Score(samples[i]).total == one[i].total);
  CHECK(reward->ScoreBatch({}, 4).empty());
}

TEST_CASE("composite: StripSpecialTokens", "[composite]") {
  auto reward = OneRule("format.tags");
  CHECK(reward->StripSpecialTokens("abc<|im_end|>") == "abc");
  CHECK(reward->StripSpecialTokens("abc <|eot_id|>\n<|endoftext|>\n") == "abc ");
  CHECK(reward->StripSpecialTokens("abc\n") == "abc\n");
  CHECK(reward->StripSpecialTokens("<|im_end|>") == "");
  CHECK(reward->StripSpecialTokens("a<|im_end|>b") == "a<|im_end|>b");
}

TEST_CASE("composite: the compiled spec has its defaults filled in", "[composite][spec]") {
  auto reward = OneRule("format.think_answer");
  const nlohmann::json& spec = reward->spec();
  CHECK(spec["prefilled_think"] == "auto");
  CHECK(spec["on_unscorable"] == "skip");
  CHECK(spec["tags"]["think"] == "think");
  CHECK(spec["special_tokens"].size() == 4);
  CHECK(spec["rules"][0]["weight"] == 1.0);
  // The compiled spec builds the same reward again.
  std::string error;
  CHECK(Reward::FromJson(spec, &error) != nullptr);
}

TEST_CASE("spec errors name file, line and key", "[spec]") {
  CHECK(SpecError("rules:\n  - {name: format.think_answer}\n  - {name: format.thinkanswer}\n") ==
        "spec.yaml:3: key 'rules[1].name': unknown rule 'format.thinkanswer'; did you mean "
        "'format.think_answer'? (known: format.think_answer, format.tags, format.tag_count, "
        "format.boxed, length.soft_overlong, repetition.ngram, reasoning.steps, accuracy.math, "
        "length.cosine)");
  CHECK(SpecError("rules:\n  - name: format.tags\n    wieght: 2\n") ==
        "spec.yaml:3: key 'rules[0].wieght': unknown key; did you mean 'weight'? (valid: name, "
        "weight, params)");
  CHECK(SpecError(
            "rules:\n  - name: format.tags\n  - name: format.boxed\n  - name: format.tag_count\n"
            "    weight: heavy\n") ==
        "spec.yaml:5: key 'rules[2].weight': expected a number, got 'heavy'");
  CHECK(SpecError("on_unscorable: skip\nrulez: []\n") ==
        "spec.yaml:2: key 'rulez': unknown key; did you mean 'rules'? (valid: special_tokens, "
        "tags, prefilled_think, on_unscorable, math, rules)");
  CHECK(SpecError("rules:\n  - name: length.soft_overlong\n    params:\n      max_length: 100\n"
                  "      cache_lenght: 10\n") ==
        "spec.yaml:5: key 'rules[0].params.cache_lenght': unknown parameter; did you mean "
        "'cache_length'? (valid: max_length, cache_length) (rule length.soft_overlong)");
  CHECK(SpecError("rules:\n  - name: length.soft_overlong\n    params: {max_length: 100}\n") ==
        "spec.yaml:3: key 'rules[0].params.cache_length': missing; expected an integer "
        "(rule length.soft_overlong)");
  CHECK(SpecError("rules:\n  - name: repetition.ngram\n    params:\n      max_penalty: 0.5\n") ==
        "spec.yaml:4: key 'rules[0].params.max_penalty': expected a number <= 0 (it is a "
        "penalty) (rule repetition.ngram)");
  CHECK(SpecError("rules:\n  - name: format.think_answer\n    params: {case_sensitive: 'no'}\n") ==
        "spec.yaml:3: key 'rules[0].params.case_sensitive': expected true or false (rule "
        "format.think_answer)");
  CHECK(SpecError("prefilled_think: sometimes\nrules: [{name: format.tags}]\n") ==
        "spec.yaml:1: key 'prefilled_think': expected one of 'auto', 'always', 'never', got "
        "'sometimes'");
  CHECK(SpecError("on_unscorable: drop\nrules: [{name: format.tags}]\n") ==
        "spec.yaml:1: key 'on_unscorable': expected one of 'skip', 'zero', got 'drop'");
  CHECK(SpecError("math:\n  precision: many\nrules: [{name: accuracy.math}]\n") ==
        "spec.yaml:2: key 'math.precision': expected an integer, got 'many'");
  CHECK(SpecError("tags: {think: '<think>'}\nrules: [{name: format.tags}]\n") ==
        "spec.yaml:1: key 'tags.think': expected a tag name without '<', '>', '/' or spaces");
  CHECK(SpecError("special_tokens: [1]\nrules: [{name: format.tags}]\n") ==
        "spec.yaml:1: key 'special_tokens': expected a list of strings, got 1 in it");
  CHECK(SpecError("special_tokens: ['</s>', '']\nrules: [{name: format.tags}]\n") ==
        "spec.yaml:1: key 'special_tokens[1]': expected a non-empty string");
  CHECK(SpecError("rules:\n  - {name: format.tags}\n  - {name: format.tags}\n") ==
        "spec.yaml:3: key 'rules[1].name': rule 'format.tags' is listed twice");
  CHECK(SpecError("rules: []\n") == "spec.yaml:1: key 'rules': expected a non-empty list of rules");
  CHECK(SpecError("special_tokens: []\n") ==
        "spec.yaml: key 'rules': missing; expected a non-empty list of rules");
  CHECK(SpecError("- just a list\n") ==
        "spec.yaml: expected a mapping with a 'rules' list, got a list");
  // Malformed YAML: line and column.
  CHECK(SpecError("rules:\n  - {name: format.tags\n").rfind("spec.yaml:", 0) == 0);
  CHECK(SpecError("rules: [}\n").find("not valid YAML") != std::string::npos);
  // Duplicate keys are an error, not a silent override.
  CHECK(SpecError("rules: [{name: format.tags}]\nrules: [{name: format.boxed}]\n") ==
        "spec.yaml:2: duplicate key 'rules'");
}

TEST_CASE("spec errors from JSON and from files", "[spec]") {
  std::string error;
  auto spec = nlohmann::json::parse(R"({"rules": [{"name": "format.tags", "weight": "1"}]})");
  CHECK(Reward::FromJson(spec, &error, "request") == nullptr);
  CHECK(error == "request: key 'rules[0].weight': expected a number, got '1'");
  CHECK(Reward::FromYamlFile("no/such/spec.yaml", &error) == nullptr);
  CHECK(error == "no/such/spec.yaml: cannot open the reward spec");
  // Quoted scalars stay strings; plain ones are typed.
  CHECK(Reward::FromYamlText("rules: [{name: format.tags, weight: '2'}]", &error) == nullptr);
  auto typed = Reward::FromYamlText("rules: [{name: format.tags, weight: 2.5e-1}]", &error);
  REQUIRE(typed != nullptr);
  CHECK(typed->spec()["rules"][0]["weight"] == 0.25);
}

TEST_CASE("a JSON spec nested a million levels deep is refused without a stack overflow",
          "[spec]") {
  // Found while writing tests/fuzz/reward_spec_fuzz.cpp (YAML stops at yaml-cpp's depth limit;
  // FromJson took such values, copied them and printed them with nlohmann's recursive code).
  const std::string deep = std::string(1'000'000, '[') + std::string(1'000'000, ']');
  std::string error;
  nlohmann::json extraction = {{"rules", {{{"name", "accuracy.math"}}}}};
  extraction["math"]["extraction"] = nlohmann::json::array();
  extraction["math"]["extraction"].push_back(nlohmann::json::parse(deep));
  CHECK(Reward::FromJson(extraction, &error, "request") == nullptr);
  CHECK_THAT(error, Catch::Contains("math.extraction"));
  nlohmann::json params = {{"rules", {{{"name", "format.tags"}}}}};
  params["rules"][0]["params"]["case_sensitive"] = nlohmann::json::parse(deep);
  CHECK(Reward::FromJson(params, &error, "request") == nullptr);
  CHECK_THAT(error, Catch::Contains("case_sensitive"));
  nlohmann::json math = {{"rules", {{{"name", "format.tags"}}}}};
  math["math"]["strict"] = nlohmann::json::parse(deep);
  CHECK(Reward::FromJson(math, &error, "request") == nullptr);
  CHECK_THAT(error, Catch::Contains("math.strict"));
}

TEST_CASE("a spec with strings that are not UTF-8 is refused", "[spec]") {
  // Found by tests/fuzz/reward_spec_fuzz.cpp: printing the unknown extraction entry threw
  // nlohmann's invalid-UTF-8 exception out of FromYamlText; an accepted spec with such a
  // special token made spec().dump() (/health, --print-config) throw.
  CHECK_THAT(SpecError("math: {extraction: [\"\xC8x\"]}\nrules: [{name: accuracy.math}]\n"),
             Catch::Contains("spec.yaml:1: not valid YAML: byte 0xC8 is not UTF-8"));
  CHECK_THAT(SpecError("special_tokens: [\"<\xC8>\"]\nrules: [{name: format.boxed}]\n"),
             Catch::Contains("UTF-8"));
}

// Found by reward_spec_fuzz: an alias that contains itself made the YAML-to-JSON conversion
// recurse until the stack ran out.
TEST_CASE("a spec whose alias contains itself is refused, not followed", "[spec]") {
  CHECK_THAT(SpecError("base: &b\n  - *b\nrules: [{name: format.boxed}]\n"),
             Catch::Contains("nested deeper than 64 levels (or an alias contains itself)"));
}

// Found while fixing a server_config_fuzz finding: aliases of aliases made a 500-byte spec into
// 387 million JSON values, and `rl score --rewards` ran out of time and memory converting it.
TEST_CASE("a spec that expands past its bound through aliases is refused", "[spec]") {
  const std::string path = "../tests/fuzz/corpus/reward_spec_fuzz/aliases_of_aliases";
  std::string error;
  CHECK(Reward::FromYamlFile(path, &error) == nullptr);
  CHECK(error == path + ": the document has more than 100000 values once aliases are expanded "
                        "(aliases of aliases?)");
}

TEST_CASE("the shipped example specs load", "[spec]") {
  for (const char* path : {"../configs/rewards/r1.yaml", "../configs/rewards/onevision.yaml",
                           "../configs/rewards/open_r1.yaml"}) {
    std::string error;
    INFO(path << ": " << error);
    CHECK(Reward::FromYamlFile(path, &error) != nullptr);
  }
}

TEST_CASE("composite: every rule scores a 1 MB completion", "[composite][large]") {
  auto reward = MakeReward(
      "rules:\n"
      "  - {name: format.think_answer}\n"
      "  - {name: format.tags}\n"
      "  - {name: format.tag_count}\n"
      "  - {name: format.boxed}\n"
      "  - {name: repetition.ngram}\n"
      "  - {name: reasoning.steps}\n"
      "  - {name: length.soft_overlong, params: {max_length: 1000, cache_length: 100}}\n");
  std::string thought;
  for (int i = 0; thought.size() < (1 << 20); ++i) {
    thought += "Step " + std::to_string(i) + ": the value " + std::to_string(i * 7919 % 10007) +
               " is smaller than " + std::to_string(i * 7919 % 10007 + 1) + ".\n";
  }
  const std::string text = "<think>\n" + thought + "</think>\n<answer>\n\\boxed{3}\n</answer>";
  RewardResult r = ScoreText(*reward, text, "", 300000);
  REQUIRE(r.status == ScoreStatus::kOk);
  CHECK(r.components[0].value == 1);
  CHECK(r.components[1].value == 1);
  CHECK(r.components[2].value == 1);
  CHECK(r.components[3].value == 1);
  CHECK(r.components[4].value < 0);  // "is smaller than" repeats on every line
  CHECK(r.components[5].value == 1);
  CHECK(r.components[6].value == -1);
}

TEST_CASE("spec errors: params", "[spec]") {
  CHECK(SpecError("rules: [{name: format.boxed, params: {strict: true}}]\n") ==
        "spec.yaml:1: key 'rules[0].params.strict': unknown parameter; this rule takes none "
        "(rule format.boxed)");
  CHECK(SpecError("rules: [{name: format.boxed, params: 3}]\n") ==
        "spec.yaml:1: key 'rules[0].params': expected a mapping of parameters, got a number");
  CHECK(SpecError("rules:\n  - name: repetition.ngram\n    params: {ngram_size: 2.5}\n") ==
        "spec.yaml:3: key 'rules[0].params.ngram_size': expected an integer (rule "
        "repetition.ngram)");
  CHECK(SpecError("rules:\n  - name: length.soft_overlong\n    params: {max_length: 10, "
                  "cache_length: 20}\n") ==
        "spec.yaml:3: key 'rules[0].params.cache_length': expected an integer in [1, max_length] "
        "(tokens) (rule length.soft_overlong)");
  CHECK(SpecError("rules:\n  - {weight: 1}\n") ==
        "spec.yaml:2: key 'rules[0].name': expected a rule name (one of: format.think_answer, "
        "format.tags, format.tag_count, format.boxed, length.soft_overlong, repetition.ngram, "
        "reasoning.steps, accuracy.math, length.cosine)");
}
