// One line of `rl score`'s JSONL input through ReadScoreRow, then scored by the R1 reward as
// `rl score` would. The first byte picks the options: `rl score`'s defaults, tight limits
// (4 levels, 256 bytes), or other key names (--completion-key text --answer-key gold ...).
// Promises checked (cli/score_row.h): any bytes give a row or an error, never an exception;
// an error names the line and is valid UTF-8; a row's views point into its JSON, its token
// count is not negative, and echoing it (dump) gives a line that reads back as the same row
// (the line-length limit aside); the reward scores it without a rule failing as a bug.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "cli/score_row.h"
#include "rewards/reward.h"
#include "tests/fuzz/fuzz_input.h"

namespace {

using rl::cli::RowOptions;
using rl::fuzz::Require;

const RowOptions& Options(uint8_t selector) {
  static const RowOptions options[3] = {
      RowOptions{},
      [] {
        RowOptions o;
        o.max_depth = 4;
        o.max_line_bytes = 256;
        return o;
      }(),
      [] {
        RowOptions o;
        o.completion_key = "text";
        o.answer_key = "gold";
        o.prompt_key = "question";
        o.tokens_key = "n";
        return o;
      }(),
  };
  return options[selector % 3];
}

const rl::rewards::Reward& R1() {
  static const std::unique_ptr<rl::rewards::Reward> reward = [] {
    std::string error;
    auto r = rl::rewards::Reward::FromYamlText(
        "special_tokens: [\"<|im_end|>\"]\nrules:\n  - {name: format.think_answer, weight: 1}\n"
        "  - {name: accuracy.math, weight: 1}\n",
        &error, "fuzz spec");
    Require(r != nullptr, "the harness's reward spec loads");
    return r;
  }();
  return *reward;
}

bool ValidUtf8(const std::string& s) {
  // nlohmann's strict dump throws on ill-formed UTF-8 and on nothing else in a string.
  try {
    (void)nlohmann::json(s).dump();
    return true;
  } catch (const nlohmann::json::type_error&) {
    return false;
  }
}

bool Inside(std::string_view view, const std::string& s) {
  return view.empty() || (view.data() >= s.data() && view.data() + view.size() <= s.data() + s.size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  rl::fuzz::FuzzInput input(data, size);
  const RowOptions& options = Options(input.Byte());
  const std::string_view line = input.Rest().value_or("");
  const rl::cli::RowResult result = rl::cli::ReadScoreRow(line, 7, options);
  if (!result.ok()) {
    const std::string message = result.error.Message("in.jsonl");
    Require(message.rfind("in.jsonl:7: ", 0) == 0, "an error names the file and line");
    Require(ValidUtf8(message), "an error message is valid UTF-8");
    return 0;
  }
  const rl::cli::ScoreRow& row = *result.row;
  Require(Inside(row.completion, row.json[options.completion_key].get_ref<const std::string&>()),
          "the completion is a view into the row");
  Require(!row.completion_tokens || *row.completion_tokens >= 0, "a token count is not negative");
  const std::string echoed = row.json.dump();
  // Echoing may lengthen a line (1e5 is echoed as 100000.0): the length limit is not the point.
  RowOptions again_options = options;
  again_options.max_line_bytes = echoed.size();
  const rl::cli::RowResult again = rl::cli::ReadScoreRow(echoed, 7, again_options);
  Require(again.ok(), "an echoed row reads back");
  Require(again.row->json == row.json && again.row->gold == row.gold &&
              again.row->completion_tokens == row.completion_tokens,
          "an echoed row reads back as the same row");
  for (const auto& c : R1().Score(row.sample()).components) {
    Require(c.status != rl::rewards::ScoreStatus::kRuleError, "no rule fails unexpectedly");
  }
  return 0;
}
