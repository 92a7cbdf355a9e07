// `rl score`: scores a JSONL file of completions with a reward spec, streaming it in chunks.
//
//   rl score --rewards configs/rewards/r1.yaml --input in.jsonl --output out.jsonl
//
// Each output line is the input object (keys in their order) plus "reward" (number, or null
// when unscorable), "components" (rule -> value, null for a rule that could not score) and
// "status". A summary goes to stderr; a progress bar too when stderr is a terminal.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "rewards/reward.h"
#include "cli/commands.h"

namespace rl::cli {
namespace {

using Row = nlohmann::ordered_json;

struct ScoreOptions {
  std::string rewards;
  std::string input;
  std::string output;
  std::string completion_key = "completion";
  std::string answer_key = "answer";
  std::string prompt_key = "prompt";
  std::string tokens_key = "completion_tokens";
  int threads = 0;
  bool skip_bad = false;
  size_t chunk_rows = 4096;
};

struct BadRow {
  int64_t line;
  std::string what;
};

// Running totals for the closing table.
class Summary {
 public:
  explicit Summary(const std::vector<std::string>& rules)
      : rules_(rules), rule_sums_(rules.size(), 0), rule_counts_(rules.size(), 0) {}

  void Add(const rewards::RewardResult& result) {
    ++rows_;
    ++status_counts_[std::string(rewards::ToString(result.status))];
    if (result.total) {
      reward_sum_ += *result.total;
      ++reward_count_;
    }
    for (size_t i = 0; i < result.components.size(); ++i) {
      if (result.components[i].status != rewards::ScoreStatus::kOk) continue;
      rule_sums_[i] += result.components[i].value;
      ++rule_counts_[i];
    }
  }

  void AddBad(BadRow bad) {
    ++bad_rows_;
    if (bad_examples_.size() < 10) bad_examples_.push_back(std::move(bad));
  }

  void Print(const std::string& input, double seconds) const {
    std::fprintf(stderr, "rl score: %lld rows scored in %.2f s (%.0f rows/s)",
                 static_cast<long long>(rows_), seconds,
                 seconds > 0 ? static_cast<double>(rows_) / seconds : 0.0);
    if (bad_rows_ > 0)
      std::fprintf(stderr, ", %lld bad rows skipped", static_cast<long long>(bad_rows_));
    std::fprintf(stderr, "\n");
    for (const BadRow& bad : bad_examples_) {
      std::fprintf(stderr, "  skipped %s:%lld: %s\n", input.c_str(),
                   static_cast<long long>(bad.line), bad.what.c_str());
    }
    if (bad_rows_ > static_cast<int64_t>(bad_examples_.size())) {
      std::fprintf(stderr, "  ... and %lld more\n",
                   static_cast<long long>(bad_rows_ - static_cast<int64_t>(bad_examples_.size())));
    }
    size_t width = 6;
    for (const std::string& rule : rules_) width = std::max(width, rule.size());
    const int w = static_cast<int>(width);
    std::fprintf(stderr, "%-*s  %10s  %10s\n", w, "rule", "mean", "scored");
    for (size_t i = 0; i < rules_.size(); ++i)
      PrintMean(w, rules_[i], rule_sums_[i], rule_counts_[i]);
    PrintMean(w, "reward", reward_sum_, reward_count_);
    std::fprintf(stderr, "%-*s  %10s\n", w, "status", "rows");
    for (const auto& [status, count] : status_counts_) {
      std::fprintf(stderr, "%-*s  %10lld\n", w, status.c_str(), static_cast<long long>(count));
    }
  }

 private:
  static void PrintMean(int width, const std::string& name, double sum, int64_t count) {
    if (count == 0) {
      std::fprintf(stderr, "%-*s  %10s  %10d\n", width, name.c_str(), "-", 0);
    } else {
      std::fprintf(stderr, "%-*s  %10.4f  %10lld\n", width, name.c_str(),
                   sum / static_cast<double>(count), static_cast<long long>(count));
    }
  }

  std::vector<std::string> rules_;
  std::vector<double> rule_sums_;
  std::vector<int64_t> rule_counts_;
  std::map<std::string, int64_t> status_counts_;
  double reward_sum_ = 0;
  int64_t reward_count_ = 0;
  int64_t rows_ = 0;
  int64_t bad_rows_ = 0;
  std::vector<BadRow> bad_examples_;
};

// "[====>     ]  45%  120000 rows" on a terminal's stderr; nothing otherwise.
class ProgressBar {
 public:
  explicit ProgressBar(const std::string& input) : enabled_(isatty(STDERR_FILENO) != 0) {
    std::error_code ec;
    if (enabled_ && input != "-") total_bytes_ = std::filesystem::file_size(input, ec);
    if (ec) total_bytes_ = 0;
  }
  void Update(uint64_t bytes, int64_t rows) const {
    if (!enabled_) return;
    if (total_bytes_ == 0) {
      std::fprintf(stderr, "\r%lld rows", static_cast<long long>(rows));
      return;
    }
    const double fraction =
        std::min(1.0, static_cast<double>(bytes) / static_cast<double>(total_bytes_));
    const int filled = static_cast<int>(fraction * 30);
    std::string bar(static_cast<size_t>(filled), '=');
    bar.resize(30, ' ');
    std::fprintf(stderr, "\r[%s] %3d%%  %lld rows", bar.c_str(), static_cast<int>(fraction * 100),
                 static_cast<long long>(rows));
  }
  void Finish() const {
    if (enabled_) std::fprintf(stderr, "\r\033[K");
  }

 private:
  bool enabled_;
  uint64_t total_bytes_ = 0;
};

// Reads one row's sample fields; an empty string when the row is good, else what was wrong.
std::string ReadSample(const Row& row, const ScoreOptions& options, std::string* gold_storage,
                       rewards::Sample* sample) {
  if (!row.is_object()) return "expected a JSON object, got " + std::string(row.type_name());
  auto completion = row.find(options.completion_key);
  if (completion == row.end()) {
    return "key '" + options.completion_key +
           "' missing (--completion-key names the completion's key)";
  }
  if (!completion->is_string()) {
    return "key '" + options.completion_key + "': expected a string, got " +
           completion->type_name();
  }
  sample->completion = completion->get_ref<const std::string&>();
  if (auto prompt = row.find(options.prompt_key); prompt != row.end() && !prompt->is_null()) {
    if (!prompt->is_string()) {
      return "key '" + options.prompt_key + "': expected a string, got " + prompt->type_name();
    }
    sample->prompt = prompt->get_ref<const std::string&>();
  }
  if (auto answer = row.find(options.answer_key); answer != row.end() && !answer->is_null()) {
    if (answer->is_string()) {
      sample->gold = std::string_view(answer->get_ref<const std::string&>());
    } else if (answer->is_number()) {
      *gold_storage = answer->dump();  // datasets often store numeric answers as numbers
      sample->gold = std::string_view(*gold_storage);
    } else {
      return "key '" + options.answer_key + "': expected a string or a number, got " +
             answer->type_name();
    }
  }
  if (auto tokens = row.find(options.tokens_key); tokens != row.end() && !tokens->is_null()) {
    if (!tokens->is_number_integer() || tokens->get<int64_t>() < 0) {
      return "key '" + options.tokens_key + "': expected a non-negative integer";
    }
    sample->completion_tokens = tokens->get<int64_t>();
  }
  return "";
}

std::string ParseErrorText(const std::exception& e) {
  std::string what = e.what();
  size_t bracket = what.find("] ");  // drop nlohmann's "[json.exception.parse_error.101] "
  return "invalid JSON: " + (bracket == std::string::npos ? what : what.substr(bracket + 2));
}

// Runs fn(i) for every i in [0, n) on up to `threads` threads, in contiguous blocks.
template <typename Fn>
void ParallelFor(size_t n, int threads, const Fn& fn) {
  const size_t workers = std::min(static_cast<size_t>(std::max(threads, 1)), (n + 63) / 64);
  if (workers <= 1) {
    for (size_t i = 0; i < n; ++i) fn(i);
    return;
  }
  std::vector<std::thread> pool;
  for (size_t w = 0; w < workers; ++w) {
    pool.emplace_back([&, w] {
      for (size_t i = n * w / workers; i < n * (w + 1) / workers; ++i) fn(i);
    });
  }
  for (std::thread& thread : pool) thread.join();
}

// Up to --chunk-rows input lines. JSON parsing and serialisation run in parallel like the
// scoring; only reading and writing are sequential.
struct Chunk {
  std::vector<std::string> lines;
  std::vector<int64_t> line_numbers;
  std::vector<Row> rows;
  std::vector<std::string> errors;        // per line; empty when the row is good
  std::vector<std::string> gold_storage;  // numeric golds as text; fixed size, views stay valid
  std::vector<rewards::Sample> samples;   // views into rows and gold_storage

  void Parse(const ScoreOptions& options, int threads) {
    const size_t n = lines.size();
    rows.assign(n, Row());
    errors.assign(n, std::string());
    gold_storage.assign(n, std::string());
    samples.assign(n, rewards::Sample());
    ParallelFor(n, threads, [&](size_t i) {
      try {
        rows[i] = Row::parse(lines[i]);
      } catch (const nlohmann::json::parse_error& e) {
        errors[i] = ParseErrorText(e);
        return;
      }
      errors[i] = ReadSample(rows[i], options, &gold_storage[i], &samples[i]);
    });
  }

  void Clear() {
    lines.clear();
    line_numbers.clear();
  }
};

// The input row plus "reward", "components" and "status", as one line of JSON.
std::string Serialize(Row& row, const rewards::RewardResult& result) {
  row["reward"] = result.total ? Row(*result.total) : Row(nullptr);
  Row components = Row::object();
  for (const rewards::RuleScore& component : result.components) {
    components[component.rule] =
        component.status == rewards::ScoreStatus::kOk ? Row(component.value) : Row(nullptr);
  }
  row["components"] = std::move(components);
  row["status"] = std::string(rewards::ToString(result.status));
  return row.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

class ScoreRun {
 public:
  ScoreRun(const ScoreOptions& options, const rewards::Reward& reward, std::ostream& out)
      : options_(options),
        reward_(reward),
        out_(out),
        threads_(options.threads > 0 ? options.threads
                                     : static_cast<int>(std::thread::hardware_concurrency())),
        summary_(reward.rule_names()) {}

  // Scores and writes one chunk; false when a bad row stops the run (see failure()).
  bool Process(Chunk& chunk) {
    chunk.Parse(options_, threads_);
    std::vector<size_t> good;
    std::vector<rewards::Sample> samples;
    for (size_t i = 0; i < chunk.lines.size(); ++i) {
      if (chunk.errors[i].empty()) {
        good.push_back(i);
        samples.push_back(chunk.samples[i]);
      } else if (options_.skip_bad) {
        summary_.AddBad({chunk.line_numbers[i], chunk.errors[i]});
      } else {
        failure_ = options_.input + ":" + std::to_string(chunk.line_numbers[i]) + ": " +
                   chunk.errors[i] + " (--skip-bad skips such rows)";
        return false;
      }
    }
    std::vector<rewards::RewardResult> results = reward_.ScoreBatch(samples, options_.threads);
    std::vector<std::string> text(good.size());
    ParallelFor(good.size(), threads_,
                [&](size_t k) { text[k] = Serialize(chunk.rows[good[k]], results[k]); });
    for (size_t k = 0; k < good.size(); ++k) {
      out_ << text[k] << '\n';
      summary_.Add(results[k]);
    }
    return true;
  }

  const Summary& summary() const { return summary_; }
  const std::string& failure() const { return failure_; }

 private:
  const ScoreOptions& options_;
  const rewards::Reward& reward_;
  std::ostream& out_;
  int threads_;
  Summary summary_;
  std::string failure_;
};

int RunScore(const ScoreOptions& options) {
  std::string error;
  std::unique_ptr<rewards::Reward> reward = rewards::Reward::FromYamlFile(options.rewards, &error);
  if (!reward) {
    std::fprintf(stderr, "rl score: %s\n", error.c_str());
    return 2;
  }
  std::ifstream input_file;
  if (options.input != "-") {
    input_file.open(options.input, std::ios::binary);
    if (!input_file) {
      std::fprintf(stderr, "rl score: %s: cannot open\n", options.input.c_str());
      return 2;
    }
  }
  std::istream& in = options.input == "-" ? std::cin : input_file;
  // Written beside the output and renamed at the end, so a failed run leaves no half file.
  const bool to_stdout = options.output == "-";
  const std::string partial = options.output + ".partial";
  std::ofstream output_file;
  if (!to_stdout) {
    output_file.open(partial, std::ios::binary | std::ios::trunc);
    if (!output_file) {
      std::fprintf(stderr, "rl score: %s: cannot write\n", partial.c_str());
      return 2;
    }
  }
  std::ostream& out = to_stdout ? std::cout : output_file;

  ScoreRun run(options, *reward, out);
  ProgressBar progress(options.input);
  const auto start = std::chrono::steady_clock::now();
  Chunk chunk;
  std::string line;
  int64_t line_number = 0;
  int64_t rows_read = 0;
  uint64_t bytes_read = 0;
  bool ok = true;
  while (ok && std::getline(in, line)) {
    ++line_number;
    bytes_read += line.size() + 1;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;  // blank line
    chunk.lines.push_back(std::move(line));
    chunk.line_numbers.push_back(line_number);
    if (chunk.lines.size() == options.chunk_rows) {
      rows_read += static_cast<int64_t>(chunk.lines.size());
      ok = run.Process(chunk);
      chunk.Clear();
      progress.Update(bytes_read, rows_read);
    }
  }
  if (ok && !chunk.lines.empty()) ok = run.Process(chunk);
  progress.Finish();
  if (!ok) std::fprintf(stderr, "rl score: %s\n", run.failure().c_str());
  if (ok && in.bad()) {
    std::fprintf(stderr, "rl score: %s: read error\n", options.input.c_str());
    ok = false;
  }
  out.flush();
  if (!to_stdout) {
    output_file.close();
    std::error_code ec;
    if (ok) std::filesystem::rename(partial, options.output, ec);
    if (ok && (!output_file || ec)) {
      std::fprintf(stderr, "rl score: %s: cannot write (%s)\n", options.output.c_str(),
                   ec.message().c_str());
      ok = false;
    }
    if (!ok) std::filesystem::remove(partial, ec);
  }
  if (!ok) return 1;
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  run.summary().Print(options.input, seconds);
  return 0;
}

}  // namespace

void AddScoreCommand(CLI::App& app) {
  auto options = std::make_shared<ScoreOptions>();
  CLI::App* command =
      app.add_subcommand("score", "Score a JSONL file of completions with a reward spec");
  command
      ->add_option("--rewards", options->rewards,
                   "Reward spec (YAML), e.g. configs/rewards/r1.yaml")
      ->required();
  command->add_option("--input", options->input, "Input JSONL, one object per line ('-': stdin)")
      ->required();
  command
      ->add_option("--output", options->output,
                   "Output JSONL: each input row plus reward, components, status ('-': stdout)")
      ->required();
  command->add_option("--completion-key", options->completion_key, "Key of the completion text")
      ->capture_default_str();
  command
      ->add_option("--answer-key", options->answer_key, "Key of the gold answer (string or number)")
      ->capture_default_str();
  command
      ->add_option("--prompt-key", options->prompt_key,
                   "Key of the prompt (for prefilled-think detection)")
      ->capture_default_str();
  command->add_option("--tokens-key", options->tokens_key, "Key of the completion's token count")
      ->capture_default_str();
  command->add_option("--threads", options->threads, "Scoring threads (0: all cores)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  command->add_option("--chunk-rows", options->chunk_rows, "Rows read and scored at a time")
      ->capture_default_str()
      ->check(CLI::Range(size_t{1}, size_t{1} << 20));
  command->add_flag("--skip-bad", options->skip_bad,
                    "Skip (and count) malformed rows instead of stopping");
  command->callback([options] {
    int code = RunScore(*options);
    if (code != 0) throw CLI::RuntimeError(code);
  });
}

}  // namespace rl::cli
