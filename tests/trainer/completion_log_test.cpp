// The completions' log (trainer/completion_log.h): the keys of a completions.jsonl line for a
// scored, an unscorable and a left-out completion, invalid UTF-8, and the terminal's short view.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "trainer/completion_log.h"

using namespace rl::trainer;
using rl::rewards::RuleScore;
using rl::rewards::ScoreStatus;

namespace {

CompletionRecord Scored() {
  CompletionRecord r;
  r.step = 3;
  r.prompt = "What is 1/2 + 1/4?\n<think>";
  r.completion = "1/2 + 1/4 = 3/4</think><answer>3/4</answer>";
  r.result.total = 2.0;
  r.result.components = {RuleScore{"format.think_answer", 1, 1, ScoreStatus::kOk, ""},
                         RuleScore{"accuracy.math", 1, 1, ScoreStatus::kOk, ""}};
  r.result.answer_check.emplace();
  r.result.answer_check->verdict = rl::rewards::math::Verdict::kCorrect;
  r.result.answer_check->extracted = "3/4";
  r.advantage = 0.5;
  r.finish_reason = "stop";
  r.length = 17;
  return r;
}

}  // namespace

TEST_CASE("a scored completion's line carries every key", "[completion_log]") {
  const nlohmann::json j = nlohmann::json::parse(CompletionLine(Scored()));
  const nlohmann::json expected = {{"step", 3},
                                   {"prompt", "What is 1/2 + 1/4?\n<think>"},
                                   {"completion", "1/2 + 1/4 = 3/4</think><answer>3/4</answer>"},
                                   {"rewards", {{"format.think_answer", 1.0}, {"accuracy.math", 1.0}}},
                                   {"reward", 2.0},
                                   {"advantage", 0.5},
                                   {"status", "ok"},
                                   {"verdict", "correct"},
                                   {"extracted", "3/4"},
                                   {"finish_reason", "stop"},
                                   {"length", 17}};
  CHECK(j == expected);
  // The order people read it in: what was asked, what came back, what it earned.
  const nlohmann::ordered_json ordered = ToJson(Scored());
  CHECK(ordered.begin().key() == "step");
  CHECK(std::next(ordered.begin(), 2).key() == "completion");
}

TEST_CASE("an unscorable completion has a null reward and rule, and says why", "[completion_log]") {
  CompletionRecord r = Scored();
  r.result.total.reset();
  r.result.status = ScoreStatus::kMissingGold;
  r.result.components[1] = RuleScore{"accuracy.math", 1, 0, ScoreStatus::kMissingGold, "no gold answer"};
  r.result.answer_check.reset();
  r.advantage.reset();  // a group dynamic sampling left out
  r.finish_reason = "length";
  const nlohmann::json j = nlohmann::json::parse(CompletionLine(r));
  CHECK(j["reward"].is_null());
  CHECK(j["rewards"]["accuracy.math"].is_null());
  CHECK(j["rewards"]["format.think_answer"] == 1.0);
  CHECK(j["advantage"].is_null());
  CHECK(j["verdict"].is_null());
  CHECK(j["extracted"].is_null());
  CHECK(j["status"] == "missing_gold");
  CHECK(j["detail"] == "accuracy.math: no gold answer");
  CHECK(j["finish_reason"] == "length");
}

TEST_CASE("a completion cut inside a character is still one valid JSON line", "[completion_log]") {
  CompletionRecord r = Scored();
  r.completion = "caf\xc3";  // the first byte of "é" only
  const std::string line = CompletionLine(r);
  CHECK(line.find('\n') == std::string::npos);
  CHECK(nlohmann::json::parse(line)["completion"] == "caf\xef\xbf\xbd");
}

TEST_CASE("the terminal view: reward, verdict, the prompt's tail and the completion's head", "[completion_log]") {
  const CompletionRecord r = Scored();
  CHECK(CompletionSummary(r, 100, 100) ==
        "[reward +2.00 correct | 17 tok, stop] What is 1/2 + 1/4?⏎<think> ⇒ 1/2 + 1/4 = 3/4</think><answer>3/4</answer>");
  CHECK(CompletionSummary(r, 8, 9) == "[reward +2.00 correct | 17 tok, stop] …⏎<think> ⇒ 1/2 + 1/4…");
  CompletionRecord unscorable = r;
  unscorable.result.total.reset();
  unscorable.result.answer_check.reset();
  unscorable.completion = "ééé";  // cut at characters, not bytes
  CHECK(CompletionSummary(unscorable, 0, 2) == "[reward unscorable | 17 tok, stop] … ⇒ éé…");
  unscorable.completion = "a\tb\x1b[2Jc";  // no tab, no escape sequence reaches the terminal
  CHECK(CompletionSummary(unscorable, 0, 10) == "[reward unscorable | 17 tok, stop] … ⇒ a\uFFFDb\uFFFD[2Jc");
}
