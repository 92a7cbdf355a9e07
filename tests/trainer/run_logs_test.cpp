// What a run writes for people watching it (trainer/run_logs.h), end to end on a tiny model:
// the TensorBoard event file read back by the specification's reader
// (tests/support/event_file_reader.h) holds exactly metrics.jsonl's numbers and the
// evaluations; completions.jsonl has its keys and one line per completion of every
// run.log_completions_steps-th step; the terminal shows every run.logging_steps-th step with
// run.num_completions_to_print completions; a resumed run drops what followed its checkpoint,
// and TensorBoard, reading the directory as its loader does, shows each step once.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include "tests/support/catch_torch.h"

#include "tests/support/event_file_reader.h"
#include "tests/support/files.h"
#include "tests/support/temp_dir.h"
#include "trainer/config.h"
#include "trainer/run.h"

namespace fs = std::filesystem;
using rl::testing::ReadJsonLines;
using namespace rl::trainer;
using rl::testing::ReadEventFile;
using rl::testing::ShownEvents;
using rl::testing::TbEvent;
using rl::testing::TempDir;

namespace {

// No SFT (the logs need no signal), 4 GRPO steps of 2 prompts x 4 completions, an evaluation
// during GRPO at step 2, checkpoints at 2 and 4.
TrainConfig LoggedRun(const fs::path& output_dir) {
  TrainConfig c = ParseTrainConfig(R"(
run: {seed: 5, threads: 1, tensorboard: true, logging_steps: 2, log_completions_steps: 2,
      num_completions_to_print: 3}
model:
  tiny: {hidden_size: 32, intermediate_size: 64, num_hidden_layers: 1, num_attention_heads: 2,
         num_key_value_heads: 1, max_position_embeddings: 96}
tokenizer: {train_vocab_size: 300}
data:
  task: {num_train: 32, num_eval: 4}
rewards:
  spec:
    rules: [{name: format.tags, weight: 1}, {name: accuracy.math, weight: 1}]
rollout: {num_generations: 4, max_new_tokens: 12, batch_size: 8}
grpo: {steps: 4, prompts_per_step: 2, learning_rate: 1e-3, beta: 0.04}
eval: {num_problems: 4, every: 2}
checkpoint: {every: 2, keep_last: 5}
)",
                                   "logged-run");
  c.run.output_dir = output_dir.string();
  return c;
}

std::vector<fs::path> EventFiles(const fs::path& run) {
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(run / "tensorboard")) files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  return files;
}

// (tag, step) -> value of every scalar of the file.
std::map<std::pair<std::string, int64_t>, float> Scalars(const std::vector<TbEvent>& events) {
  std::map<std::pair<std::string, int64_t>, float> scalars;
  for (const TbEvent& e : events) {
    for (const auto& [tag, value] : e.values) {
      INFO(tag << " at step " << e.step);
      CHECK(scalars.emplace(std::pair(tag, e.step), value).second);  // each once
    }
  }
  return scalars;
}

// What TensorBoard shows of the run: (tag, step) -> value, each once.
std::map<std::pair<std::string, int64_t>, float> ShownScalars(const fs::path& run) {
  return Scalars(ShownEvents(run / "tensorboard"));
}

// What it should show: every number of every metrics.jsonl line, as a float, under train/<key>
// (eval/ keys as they are), and the evaluations before GRPO (step 0) and after it (the last
// step), as eval.json has them.
std::map<std::pair<std::string, int64_t>, float> LoggedScalars(const fs::path& run) {
  std::map<std::pair<std::string, int64_t>, float> scalars;
  int64_t last = 0;
  for (const nlohmann::json& m : ReadJsonLines(run / "metrics.jsonl")) {
    last = m["step"].get<int64_t>();
    for (const auto& [key, value] : m.items()) {
      if (key == "step") continue;
      const std::string tag = key.rfind("eval/", 0) == 0 ? key : "train/" + key;
      CHECK(scalars.emplace(std::pair(tag, last), static_cast<float>(value.get<double>())).second);
    }
  }
  std::ifstream eval_file(run / "eval.json");
  const nlohmann::json eval = nlohmann::json::parse(eval_file);
  for (const auto& [name, step] : {std::pair<std::string, int64_t>("before_grpo", 0), {"after_grpo", last}}) {
    for (const char* key : {"format_rate", "accuracy"}) {
      CHECK(scalars.emplace(std::pair("eval/" + std::string(key), step), eval[name][key].get<float>()).second);
    }
  }
  return scalars;
}

// What spdlog's default logger prints while it lives.
class CapturedLog {
 public:
  CapturedLog() : sink_(std::make_shared<spdlog::sinks::ostream_sink_mt>(out_)) {
    spdlog::default_logger()->sinks().push_back(sink_);
  }
  ~CapturedLog() {
    auto& sinks = spdlog::default_logger()->sinks();
    sinks.erase(std::remove(sinks.begin(), sinks.end(), sink_), sinks.end());
  }
  std::string text() const { return out_.str(); }

 private:
  std::ostringstream out_;
  std::shared_ptr<spdlog::sinks::ostream_sink_mt> sink_;
};

void CheckCompletionLines(const std::vector<nlohmann::json>& lines) {
  const std::set<std::string> keys = {"step",   "prompt",  "completion", "rewards",       "reward", "advantage",
                                      "status", "verdict", "extracted",  "finish_reason", "length"};
  for (const nlohmann::json& line : lines) {
    INFO(line.dump());
    std::set<std::string> got;
    for (const auto& [key, value] : line.items()) got.insert(key);
    got.erase("detail");  // only for an unscorable completion
    CHECK(got == keys);
    CHECK(line["rewards"].size() == 2);
    CHECK(line["advantage"].is_number());  // no dynamic sampling: every group is in the batch
    CHECK((line["finish_reason"] == "stop" || line["finish_reason"] == "length"));
    CHECK(line["length"].get<int64_t>() >= 1);
    CHECK(line["length"].get<int64_t>() <= 12);
    CHECK(line["prompt"].get<std::string>().size() > 0);
    if (line["reward"].is_number()) {
      CHECK(line["reward"].get<double>() ==
            Approx(line["rewards"]["format.tags"].get<double>() + line["rewards"]["accuracy.math"].get<double>()));
      CHECK(line["verdict"].is_string());
    }
  }
}

}  // namespace

TEST_CASE("a run's TensorBoard events equal its metrics.jsonl; completions.jsonl and the terminal as configured",
          "[run][logs]") {
  const TempDir tmp;
  const fs::path run = tmp.path();
  std::string terminal;
  {
    CapturedLog log;
    RunTraining(LoggedRun(run), {});
    terminal = log.text();
  }
  const std::vector<nlohmann::json> metrics = ReadJsonLines(run / "metrics.jsonl");
  REQUIRE(metrics.size() == 4);  // every step, whatever logging_steps says
  const std::vector<fs::path> files = EventFiles(run);
  REQUIRE(files.size() == 1);
  CHECK(files[0].filename().string().rfind("events.out.tfevents.", 0) == 0);
  const std::vector<TbEvent> events = ReadEventFile(files[0].string());
  REQUIRE(events.size() >= 2);
  CHECK(events[0].file_version == "brain.Event:2");
  CHECK(events[1].session_status == 1);  // START at step 0, before the evaluation before GRPO
  CHECK(events[1].step == 0);
  CHECK(metrics[1].contains("eval/accuracy"));  // evaluated during GRPO at step 2
  CHECK(ShownScalars(run) == LoggedScalars(run));

  // completions.jsonl: steps 2 and 4, one line per completion (2 prompts x 4).
  const std::vector<nlohmann::json> completions = ReadJsonLines(run / "completions.jsonl");
  REQUIRE(completions.size() == 16);
  for (size_t i = 0; i < completions.size(); ++i) CHECK(completions[i]["step"] == (i < 8 ? 2 : 4));
  CheckCompletionLines(completions);

  // The terminal: steps 2 and 4 only, each with 3 completions.
  CHECK(terminal.find("grpo    1/4") == std::string::npos);
  CHECK(terminal.find("grpo    2/4") != std::string::npos);
  CHECK(terminal.find("grpo    3/4") == std::string::npos);
  CHECK(terminal.find("grpo    4/4") != std::string::npos);
  size_t shown = 0;
  for (size_t at = terminal.find("  [reward "); at != std::string::npos; at = terminal.find("  [reward ", at + 1)) ++shown;
  CHECK(shown == 6);

  // A resumed run drops the lines of the steps after its checkpoint and writes a new event file.
  fs::remove_all(run / "checkpoint-4");
  RunOptions resume;
  resume.resume = true;  // from checkpoint-2
  RunTraining(LoggedRun(run), resume);
  CHECK(ReadJsonLines(run / "metrics.jsonl").size() == 4);
  const std::vector<nlohmann::json> again = ReadJsonLines(run / "completions.jsonl");
  REQUIRE(again.size() == 16);
  for (size_t i = 0; i < again.size(); ++i) CHECK(again[i]["step"] == (i < 8 ? 2 : 4));
  // Resumed exactly: step 4's completions are those of the uninterrupted run.
  CHECK(std::vector(again.begin() + 8, again.end()) == std::vector(completions.begin() + 8, completions.end()));
  const std::vector<fs::path> now = EventFiles(run);
  CHECK(now.size() <= 2);  // a new file, unless opened within the same second (then appended to)
  std::set<int64_t> steps, starts;
  for (const TbEvent& e : ReadEventFile(now.back().string())) {
    if (!e.values.empty()) steps.insert(e.step);
    if (e.session_status == 1) starts.insert(e.step);
  }
  CHECK(steps.count(3) == 1);
  CHECK(steps.count(4) == 1);
  CHECK(starts.count(3) == 1);  // the first step the resumed run logs
  // Steps 3 and 4 were logged twice, but TensorBoard shows each once, the resumed run's value:
  // exactly the rewritten metrics.jsonl, the evaluation before GRPO (from the checkpoint) and
  // the resumed run's after it.
  CHECK(ShownScalars(run) == LoggedScalars(run));
}
