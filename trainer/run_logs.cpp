#include "trainer/run_logs.h"

#include <algorithm>
#include <stdexcept>
#include <string>

#include <spdlog/spdlog.h>

namespace rl::trainer {
namespace {

namespace fs = std::filesystem;

// Appends to `path` (created if missing); throws naming it when it cannot be opened.
std::ofstream OpenForAppend(const fs::path& path) {
  std::ofstream out(path, std::ios::binary | std::ios::app);
  if (!out) throw std::runtime_error("cannot open '" + path.string() + "' for writing");
  return out;
}

void Flush(std::ofstream& out, const fs::path& path) {
  out.flush();
  if (!out) throw std::runtime_error("writing '" + path.string() + "' failed");
}

// How much of a prompt and of a completion one terminal line shows.
constexpr size_t kPromptTailChars = 60;
constexpr size_t kCompletionHeadChars = 200;

}  // namespace

void DropLinesAfterStep(const fs::path& path, int64_t step) {
  if (!fs::exists(path)) return;
  std::ifstream in(path, std::ios::binary);
  std::string kept, line;
  while (std::getline(in, line)) {
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_discarded() && j.value("step", int64_t{0}) <= step) kept += line + "\n";
  }
  in.close();
  const fs::path temp = path.string() + ".tmp";
  std::ofstream(temp, std::ios::binary) << kept;
  fs::rename(temp, path);
}

RunLogs::RunLogs(const RunSection& run, int64_t start_step) : run_(run) {
  const fs::path out(run.output_dir);
  DropLinesAfterStep(out / "metrics.jsonl", start_step);
  metrics_ = OpenForAppend(out / "metrics.jsonl");
  DropLinesAfterStep(out / "completions.jsonl", start_step);
  if (run.log_completions_steps > 0) completions_ = OpenForAppend(out / "completions.jsonl");
  if (run.tensorboard) tensorboard_.emplace((out / "tensorboard").string(), start_step == 0 ? 0 : start_step + 1);
}

void RunLogs::Step(const nlohmann::ordered_json& metrics, std::span<const CompletionRecord> completions) {
  const fs::path out(run_.output_dir);
  const int64_t step = metrics.at("step").get<int64_t>();
  metrics_ << metrics.dump() << "\n";
  Flush(metrics_, out / "metrics.jsonl");
  if (run_.log_completions_steps > 0 && step % run_.log_completions_steps == 0) {
    for (const CompletionRecord& r : completions) completions_ << CompletionLine(r) << "\n";
    Flush(completions_, out / "completions.jsonl");
  }
  if (tensorboard_) {
    tensorboard_->AddMetrics(metrics, step);
    tensorboard_->Flush();
  }
}

void RunLogs::Evaluation(const nlohmann::ordered_json& eval, int64_t step) {
  if (!tensorboard_) return;
  tensorboard_->AddMetrics(eval, step);
  tensorboard_->Flush();
}

bool RunLogs::IsLoggingStep(int64_t step, int64_t last_step) const {
  return step == last_step || step % run_.logging_steps == 0;  // logging_steps >= 1 (config.cpp)
}

void RunLogs::PrintCompletions(std::span<const CompletionRecord> completions) const {
  const size_t n = std::min(static_cast<size_t>(run_.num_completions_to_print), completions.size());
  for (size_t i = 0; i < n; ++i) {
    const CompletionRecord& r = completions[i * completions.size() / n];
    spdlog::info("  {}", CompletionSummary(r, kPromptTailChars, kCompletionHeadChars));
  }
}

}  // namespace rl::trainer
