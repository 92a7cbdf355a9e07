// rl/data: JSONL datasets (text and chat prompts), the fraction task, the epoch sampler.
#include <filesystem>
#include <fstream>
#include <set>

#include <catch2/catch.hpp>

#include "rl/data/dataset.h"
#include "rl/data/fraction_task.h"
#include "rl/data/sampler.h"
#include "tests/support/temp_dir.h"

using namespace rl::data;

namespace {

// A file of this process's own temporary folder (removed at exit), so that tests in parallel
// never share one.
std::string WriteTemp(const std::string& name, const std::string& text) {
  static const rl::testing::TempDir dir;
  const std::string path = dir / name;
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

}  // namespace

TEST_CASE("JSONL examples with configured keys", "[data]") {
  std::string path = WriteTemp("rl_data_ok.jsonl",
                               "{\"problem\": \"1+1\", \"solution\": 2}\n\n"
                               "{\"problem\": \"x\", \"solution\": \"\\\\frac{1}{2}\"}\r\n");
  JsonlKeys keys;
  keys.prompt_key = "problem";
  keys.answer_key = "solution";
  auto rows = ReadJsonlExamples(path, keys);
  REQUIRE(rows.size() == 2);
  CHECK(rows[0].answer == "2");
  CHECK(rows[1].answer == "\\frac{1}{2}");
}

TEST_CASE("JSONL errors name the file and line", "[data]") {
  JsonlKeys keys;
  std::string bad_json = WriteTemp("rl_data_bad.jsonl", "{\"prompt\": \"a\", \"answer\": \"b\"}\n{oops\n");
  CHECK_THROWS_WITH(ReadJsonlExamples(bad_json, keys), Catch::EndsWith("rl_data_bad.jsonl:2: not valid JSON"));
  std::string missing = WriteTemp("rl_data_missing.jsonl", "{\"question\": \"a\", \"answer\": \"b\"}\n");
  CHECK_THROWS_WITH(ReadJsonlExamples(missing, keys),
                    Catch::Contains("rl_data_missing.jsonl:1: missing key 'prompt' (keys present: answer, question)"));
  std::string wrong = WriteTemp("rl_data_wrong.jsonl", "{\"prompt\": 3, \"answer\": \"b\"}\n");
  CHECK_THROWS_WITH(ReadJsonlExamples(wrong, keys),
                    Catch::Contains(":1: key 'prompt' must be a string or a list of chat messages, got number"));
  CHECK_THROWS_WITH(ReadJsonlExamples("/nonexistent/x.jsonl", keys), Catch::Contains("cannot open"));
}

TEST_CASE("JSONL prompts as chat messages (TRL's conversational form)", "[data][chat]") {
  std::string path = WriteTemp("rl_data_chat.jsonl",
                               "{\"prompt\": \"1+1\", \"answer\": 2}\n"
                               "{\"prompt\": [{\"role\": \"system\", \"content\": \"Be brief.\"},"
                               " {\"role\": \"user\", \"content\": \"1+1\", \"name\": \"ignored\"}], \"answer\": 2}\n"
                               "{\"prompt\": [{\"role\": \"user\", \"content\": \"a\"}, {\"role\": \"assistant\","
                               " \"content\": \"b\"}, {\"role\": \"user\", \"content\": \"c\"}], \"answer\": 3}\n");
  auto rows = ReadJsonlExamples(path, JsonlKeys{});
  REQUIRE(rows.size() == 3);
  CHECK(rows[0].prompt == "1+1");
  CHECK(rows[0].messages.empty());
  CHECK(rows[1].prompt.empty());
  REQUIRE(rows[1].messages.size() == 2);
  CHECK(rows[1].messages[0].role == "system");
  CHECK(rows[1].messages[0].content == "Be brief.");
  CHECK(rows[1].messages[1].role == "user");
  CHECK(rows[1].messages[1].content == "1+1");
  REQUIRE(rows[2].messages.size() == 3);
  CHECK(rows[2].messages[1].role == "assistant");
}

TEST_CASE("chat-message prompts of the wrong shape name the file, line and field", "[data][chat]") {
  const std::string good = "{\"prompt\": [{\"role\": \"user\", \"content\": \"ok\"}], \"answer\": 1}\n";
  auto error_of = [&](const std::string& prompt) {
    std::string path = WriteTemp("rl_data_chat_bad.jsonl", good + "{\"prompt\": " + prompt + ", \"answer\": 1}\n");
    try {
      ReadJsonlExamples(path, JsonlKeys{});
    } catch (const DataError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK_THAT(error_of("[]"),
             Catch::EndsWith("rl_data_chat_bad.jsonl:2: key 'prompt' is an empty list; expected at least one message"));
  CHECK_THAT(error_of("[\"hi\"]"),
             Catch::EndsWith(":2: key 'prompt[0]' must be an object {\"role\", \"content\"}, got string"));
  CHECK_THAT(error_of("[{\"role\": \"user\"}]"),
             Catch::EndsWith(":2: key 'prompt[0]' must have 'role' and 'content', missing 'content'"));
  CHECK_THAT(error_of("[{\"content\": \"hi\"}]"),
             Catch::EndsWith(":2: key 'prompt[0]' must have 'role' and 'content', missing 'role'"));
  CHECK_THAT(error_of("[{\"role\": \"system\", \"content\": \"s\"}, {\"role\": \"tool\", \"content\": \"x\"}]"),
             Catch::EndsWith(":2: key 'prompt[1].role' must be \"system\", \"user\" or \"assistant\", got \"tool\""));
  CHECK_THAT(error_of("[{\"role\": 1, \"content\": \"x\"}]"),
             Catch::EndsWith(":2: key 'prompt[0].role' must be \"system\", \"user\" or \"assistant\", got number"));
  CHECK_THAT(error_of("[{\"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": \"x\"}]}]"),
             Catch::EndsWith(":2: key 'prompt[0].content' must be a string, got array"));
  CHECK_THAT(error_of("[{\"role\": \"user\", \"content\": \"q\"}, {\"role\": \"assistant\", \"content\": \"a\"}]"),
             Catch::EndsWith(":2: key 'prompt': the last message must have role \"user\", got \"assistant\""));
  CHECK_THAT(error_of("{\"role\": \"user\", \"content\": \"x\"}"),
             Catch::EndsWith(":2: key 'prompt' must be a string or a list of chat messages, got object"));
}

TEST_CASE("rationals in every form", "[data][task]") {
  CHECK(WriteRational(6, 8, 0) == "3/4");
  CHECK(WriteRational(6, 8, 1) == "\\frac{3}{4}");
  CHECK(WriteRational(6, 8, 2) == "0.75");
  CHECK(WriteRational(1, 20, 2) == "0.05");
  CHECK(WriteRational(9, 4, 2) == "2.25");
  CHECK(WriteRational(1, 3, 2) == "1/3");  // does not terminate
  CHECK(WriteRational(8, 4, 1) == "2");
}

TEST_CASE("fraction task: seeded, held out, traces in R1 form", "[data][task]") {
  FractionTaskOptions options;
  options.seed = 5;
  options.num_train = 500;
  options.num_eval = 100;
  options.teacher_slip_rate = 0.3;
  FractionTask task = GenerateFractionTask(options);
  REQUIRE(task.train.size() == 500);
  REQUIRE(task.eval.size() == 100);

  FractionTask again = GenerateFractionTask(options);
  CHECK(again.train[17].response == task.train[17].response);
  options.seed = 6;
  CHECK(GenerateFractionTask(options).eval[0].prompt != task.eval[0].prompt);

  std::set<std::string> eval_prompts;
  for (const Example& e : task.eval) eval_prompts.insert(e.prompt);
  CHECK(eval_prompts.size() == 100);
  int slips = 0;
  for (const Example& e : task.train) {
    CHECK(eval_prompts.count(e.prompt) == 0);
    CHECK(e.response.rfind("<think>", 0) == 0);
    CHECK(e.response.find("</think><answer>") != std::string::npos);
    CHECK(e.response.substr(e.response.size() - 9) == "</answer>");
    if (e.response.find("stays") == std::string::npos) ++slips;
  }
  CHECK(slips > 100);  // about 0.3 · 500
  CHECK(slips < 200);
  // Example: "Compute 3/8 + 1/8." has the trace "3 + 1 = 4, the denominator stays 8."
  const Example& e = task.eval[0];
  CHECK(e.prompt.rfind("Compute ", 0) == 0);
  CHECK(e.response.find("stays") != std::string::npos);
}

TEST_CASE("fraction task refuses to hold out most problems", "[data][task]") {
  FractionTaskOptions options;
  options.num_eval = 400;  // of 9·9·8 = 648 distinct problems
  CHECK_THROWS_WITH(GenerateFractionTask(options), Catch::Contains("more than half"));
}

TEST_CASE("epoch sampler: every index once per epoch, resumable", "[data][sampler]") {
  EpochSampler sampler(10, 3, true);
  std::vector<int64_t> first = sampler.Next(10);
  CHECK(std::set<int64_t>(first.begin(), first.end()).size() == 10);
  std::vector<int64_t> a = sampler.Next(4);
  auto position = sampler.position();
  CHECK(position.epoch == 1);
  CHECK(position.offset == 4);
  std::vector<int64_t> b = sampler.Next(9);
  EpochSampler resumed(10, 3, true);
  resumed.Seek(position);
  CHECK(resumed.Next(9) == b);
  EpochSampler ordered(5, 3, false);
  CHECK(ordered.Next(7) == std::vector<int64_t>{0, 1, 2, 3, 4, 0, 1});
}
