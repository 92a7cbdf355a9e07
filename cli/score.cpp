// `rl score`: scores a JSONL file of completions with a reward spec, streaming it in chunks.
//
//   rl score --rewards configs/rewards/r1.yaml --input in.jsonl --output out.jsonl
//
// Each output line is the input object (keys in their order) plus the result's wire form
// (rewards::ToJson: "reward", null when unscorable; "status"; "verdict" and "extracted" of
// the answer check; "components", rule -> value, null for a rule that could not score; and
// "detail" when the status is not ok). A summary goes to stderr; a progress bar too when stderr is a terminal. Every line
// is read by ReadScoreRow (cli/score_row.h), which says what a good row is.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <streambuf>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/score_row.h"
#include "common/threads.h"
#include "rewards/reward.h"

namespace rl::cli {
namespace {

using Row = nlohmann::ordered_json;

struct ScoreOptions {
  std::string rewards;
  std::string input;
  std::string output;
  RowOptions row;  // keys and limits of a row
  int threads = 0;
  bool skip_bad = false;
  size_t chunk_rows = 4096;
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

  void AddBad(RowError bad) {
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
    for (const RowError& bad : bad_examples_) {
      std::fprintf(stderr, "  skipped %s\n", bad.Message(input).c_str());
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
  std::vector<RowError> bad_examples_;
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

// Runs fn(i) for every i in [0, n) on up to `threads` threads, in contiguous blocks. An
// exception thrown by fn is rethrown here once every worker has stopped: escaping a thread it
// would end the process before the partial output is removed.
template <typename Fn>
void ParallelFor(size_t n, int threads, const Fn& fn) {
  const size_t workers = std::min(static_cast<size_t>(std::max(threads, 1)), (n + 63) / 64);
  if (workers <= 1) {
    for (size_t i = 0; i < n; ++i) fn(i);
    return;
  }
  std::vector<std::thread> pool;
  std::vector<std::exception_ptr> errors(workers);
  for (size_t w = 0; w < workers; ++w) {
    pool.emplace_back([&, w] {
      try {
        for (size_t i = n * w / workers; i < n * (w + 1) / workers; ++i) fn(i);
      } catch (...) {
        errors[w] = std::current_exception();
      }
    });
  }
  for (std::thread& thread : pool) thread.join();
  for (const std::exception_ptr& error : errors) {
    if (error) std::rethrow_exception(error);
  }
}

// Up to --chunk-rows input lines. JSON parsing and serialisation run in parallel like the
// scoring; only reading and writing are sequential.
struct Chunk {
  std::vector<std::string> lines;
  std::vector<int64_t> line_numbers;
  std::vector<RowResult> rows;  // one per line

  void Read(const RowOptions& options, int threads) {
    rows.assign(lines.size(), RowResult());
    ParallelFor(lines.size(), threads,
                [&](size_t i) { rows[i] = ReadScoreRow(lines[i], line_numbers[i], options); });
  }

  void Clear() {
    lines.clear();
    line_numbers.clear();
  }
};

// The input row plus the result's wire form, as one line of JSON.
std::string Serialize(Row& row, const rewards::RewardResult& result) {
  Row wire = rewards::ToJson(result);
  for (auto& [key, value] : wire.items()) row[key] = std::move(value);
  return row.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// Reads the next line (without its '\n') into *line; false at the end of the input. Keeps at
// most max_bytes + 1 bytes of a line, so that input without newlines costs bounded memory;
// ReadScoreRow reports the cut line as too long. *bytes_read counts every byte consumed.
bool ReadLine(std::streambuf& in, size_t max_bytes, std::string* line, uint64_t* bytes_read) {
  using Traits = std::streambuf::traits_type;
  line->clear();
  Traits::int_type c = in.sbumpc();
  if (Traits::eq_int_type(c, Traits::eof())) return false;
  for (; !Traits::eq_int_type(c, Traits::eof()) && c != '\n'; c = in.sbumpc()) {
    ++*bytes_read;
    if (line->size() <= max_bytes) line->push_back(Traits::to_char_type(c));
  }
  if (c == '\n') ++*bytes_read;
  return true;
}

// Whether a line read by ReadLine is blank; a cut line is not, whatever it starts with.
bool IsBlank(const std::string& line, size_t max_bytes) {
  return line.size() <= max_bytes && line.find_first_not_of(" \t\r") == std::string::npos;
}

// The path that SIGINT, SIGTERM and SIGHUP remove while a RemoveOnSignal lives. Global because a
// signal handler can reach nothing else; atomic so that the handler reads it whole.
std::atomic<const char*> path_to_remove_on_signal{nullptr};

void RemoveAndReraise(int signal) {
  if (const char* path = path_to_remove_on_signal.load()) unlink(path);
  raise(signal);  // SA_RESETHAND restored the default action: the process ends as signalled
}

// While it lives, SIGINT, SIGTERM and SIGHUP first remove `path`, then end the process as they
// would have. A signal that the process ignores (nohup) stays ignored.
class RemoveOnSignal {
 public:
  explicit RemoveOnSignal(const std::string& path) {
    path_to_remove_on_signal.store(path.c_str());
    struct sigaction action = {};
    action.sa_handler = RemoveAndReraise;
    action.sa_flags = SA_RESETHAND;
    sigemptyset(&action.sa_mask);
    for (size_t i = 0; i < kSignals.size(); ++i) {
      sigaction(kSignals[i], nullptr, &previous_[i]);
      if (previous_[i].sa_handler != SIG_IGN) sigaction(kSignals[i], &action, nullptr);
    }
  }
  ~RemoveOnSignal() {
    for (size_t i = 0; i < kSignals.size(); ++i) sigaction(kSignals[i], &previous_[i], nullptr);
    path_to_remove_on_signal.store(nullptr);
  }
  // One path at a time: the handler has one slot.
  RemoveOnSignal(const RemoveOnSignal&) = delete;
  RemoveOnSignal& operator=(const RemoveOnSignal&) = delete;

 private:
  static constexpr std::array<int, 3> kSignals = {SIGINT, SIGTERM, SIGHUP};
  std::array<struct sigaction, 3> previous_;
};

// The output, written to <path>.partial and renamed over <path> by Commit(). Until then a run
// that fails, throws or is ended by SIGINT, SIGTERM or SIGHUP removes the .partial and leaves
// an earlier run's output as it was. "-" is stdout, written as the rows come.
class Output {
 public:
  explicit Output(const std::string& path) : path_(path), partial_(path + ".partial") {}
  ~Output() {
    if (remove_partial_) {
      file_.close();
      std::error_code ec;
      std::filesystem::remove(partial_, ec);
    }
  }

  // False, with the reason printed, when the .partial cannot be created.
  bool Open() {
    if (path_ == "-") return true;
    on_signal_.emplace(partial_);  // before the file exists, so that no signal can miss it
    file_.open(partial_, std::ios::binary | std::ios::trunc);
    if (!file_) {
      on_signal_.reset();  // a .partial that is not ours is not ours to remove
      std::fprintf(stderr, "rl score: %s: cannot write\n", partial_.c_str());
      return false;
    }
    remove_partial_ = true;
    return true;
  }
  std::ostream& stream() { return path_ == "-" ? std::cout : file_; }

  // Flushes and renames the .partial over the output; false, with the reason printed, when
  // writing failed.
  bool Commit() {
    if (path_ == "-") return static_cast<bool>(std::cout.flush());
    file_.close();
    std::error_code ec;
    if (file_) std::filesystem::rename(partial_, path_, ec);
    if (!file_ || ec) {
      std::fprintf(stderr, "rl score: %s: cannot write (%s)\n", path_.c_str(),
                   ec ? ec.message().c_str() : "write failed");
      return false;
    }
    remove_partial_ = false;
    return true;
  }

 private:
  std::string path_;
  std::string partial_;
  std::ofstream file_;
  std::optional<RemoveOnSignal> on_signal_;  // holds partial_.c_str(): declared after it
  bool remove_partial_ = false;  // from creation until renamed
};

class ScoreRun {
 public:
  ScoreRun(const ScoreOptions& options, const rewards::Reward& reward, std::ostream& out)
      : options_(options),
        reward_(reward),
        out_(out),
        threads_(common::ThreadCount(options.threads)),
        summary_(reward.rule_names()) {}

  // Reads, scores and writes every row of `in`; false, with the reason printed, when a bad
  // row stops the run.
  bool ScoreAll(std::istream& in) {
    ProgressBar progress(options_.input);
    Chunk chunk;
    std::string line;
    int64_t line_number = 0;
    int64_t rows_read = 0;
    uint64_t bytes_read = 0;
    bool ok = true;
    while (ok && ReadLine(*in.rdbuf(), options_.row.max_line_bytes, &line, &bytes_read)) {
      ++line_number;
      if (IsBlank(line, options_.row.max_line_bytes)) continue;
      chunk.lines.push_back(std::move(line));
      chunk.line_numbers.push_back(line_number);
      if (chunk.lines.size() == options_.chunk_rows) {
        rows_read += static_cast<int64_t>(chunk.lines.size());
        ok = Process(chunk);
        chunk.Clear();
        progress.Update(bytes_read, rows_read);
      }
    }
    if (ok && !chunk.lines.empty()) ok = Process(chunk);
    progress.Finish();
    if (!ok) std::fprintf(stderr, "rl score: %s\n", failure_.c_str());
    return ok;
  }

  const Summary& summary() const { return summary_; }

 private:
  // Scores and writes one chunk; false when a bad row stops the run (see failure_).
  bool Process(Chunk& chunk) {
    chunk.Read(options_.row, threads_);
    std::vector<ScoreRow*> good;
    std::vector<rewards::Sample> samples;
    for (RowResult& result : chunk.rows) {
      if (result.ok()) {
        good.push_back(&*result.row);
        samples.push_back(result.row->sample());
      } else if (options_.skip_bad) {
        summary_.AddBad(std::move(result.error));
      } else {
        failure_ = result.error.Message(options_.input) + " (--skip-bad skips such rows)";
        return false;
      }
    }
    std::vector<rewards::RewardResult> results = reward_.ScoreBatch(samples, options_.threads);
    std::vector<std::string> text(good.size());
    ParallelFor(good.size(), threads_,
                [&](size_t k) { text[k] = Serialize(good[k]->json, results[k]); });
    for (size_t k = 0; k < good.size(); ++k) {
      out_ << text[k] << '\n';
      summary_.Add(results[k]);
    }
    return true;
  }

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
  Output output(options.output);
  if (!output.Open()) return 2;

  ScoreRun run(options, *reward, output.stream());
  const auto start = std::chrono::steady_clock::now();
  try {
    if (!run.ScoreAll(in) || !output.Commit()) return 1;
  } catch (const std::ios_base::failure& e) {  // a file's read error (a directory, EIO)
    std::fprintf(stderr, "rl score: %s: read error (%s)\n", options.input.c_str(), e.what());
    return 1;
  }
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
  command
      ->add_option("--completion-key", options->row.completion_key, "Key of the completion text")
      ->capture_default_str();
  command
      ->add_option("--answer-key", options->row.answer_key,
                   "Key of the gold answer (string or number)")
      ->capture_default_str();
  command
      ->add_option("--prompt-key", options->row.prompt_key,
                   "Key of the prompt (for prefilled-think detection)")
      ->capture_default_str();
  command
      ->add_option("--tokens-key", options->row.tokens_key, "Key of the completion's token count")
      ->capture_default_str();
  command->add_option("--threads", options->threads, "Scoring threads (0: all cores)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  command->add_option("--chunk-rows", options->chunk_rows, "Rows read and scored at a time")
      ->capture_default_str()
      ->check(CLI::Range(size_t{1}, size_t{1} << 20));
  command
      ->add_option("--max-line-bytes", options->row.max_line_bytes,
                   "A longer line is a bad row (a chunk holds up to chunk-rows such lines)")
      ->capture_default_str()
      ->check(CLI::Range(size_t{1}, size_t{1} << 32));
  command->add_flag("--skip-bad", options->skip_bad,
                    "Skip (and count) malformed rows instead of stopping");
  command->callback([options] {
    int code = 1;
    try {
      code = RunScore(*options);
    } catch (const std::exception& e) {  // bad_alloc, say; the .partial went as RunScore unwound
      std::fprintf(stderr, "rl score: %s\n", e.what());
    }
    if (code != 0) throw CLI::RuntimeError(code);
  });
}

}  // namespace rl::cli
