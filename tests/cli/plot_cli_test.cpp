// `rl plot` through the built binary: a PNG (and its gnuplot script) from a small run directory
// (tests/cli/plot_run: six steps of metrics with kl and one evaluation, eval.json), a run with
// almost nothing logged, and the errors: no metrics.jsonl, a malformed line, no gnuplot.
#include <filesystem>
#include <fstream>
#include <string>

#include <catch2/catch.hpp>

#include "tests/support/files.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

namespace fs = std::filesystem;
using Catch::Contains;
using rl::testing::ProcessResult;
using rl::testing::ReadFile;
using rl::testing::RunProcess;
using rl::testing::TempDir;

namespace {

// `path` single-quoted for the shell.
std::string Quoted(const std::string& path) { return std::string("'").append(path).append("'"); }

ProcessResult Plot(const std::string& arguments, const std::string& env = "") {
  return RunProcess(env + " " + Quoted(RL_BINARY) + " plot " + arguments);
}

// A PNG file: its 8-byte signature and more than a header's worth of picture.
void CheckPng(const fs::path& path) {
  REQUIRE(fs::exists(path));
  const std::string bytes = ReadFile(path);
  CHECK(bytes.substr(0, 8) == std::string("\x89PNG\r\n\x1a\n", 8));
  CHECK(bytes.size() > 10000);
}

}  // namespace

TEST_CASE("rl plot draws a run's metrics and evaluation into a PNG", "[cli][plot]") {
  const TempDir tmp;
  const std::string png = tmp / "picture.png";
  const ProcessResult r = Plot("cli/plot_run -o " + Quoted(png));
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out == png + "\n");
  CheckPng(png);
  // The script beside it holds the data: one line per step, the evaluation's bars.
  const std::string script = ReadFile(tmp / "picture.gp");
  CHECK_THAT(script, Contains("$metrics << EOD\n0 NaN "));  // the evaluation before GRPO
  CHECK_THAT(script, Contains("\n1 1.40625 "));
  // Held-out accuracy: before GRPO, at step 3, after GRPO (step 6), joined as one series.
  CHECK_THAT(script, Contains("EOD\n0 0.695\n3 0.5\n6 1\nEOD\n"));
  CHECK_THAT(script, Contains("\"format rate\" 1.000 1.000\naccuracy 0.695 1.000\n"));
  CHECK_THAT(script, Contains("'KL to the reference'\nset key top left\nplot $metrics"));
  CHECK_THAT(script, Contains("set title 'held-out accuracy 0.695 -> 1.000'"));
}

TEST_CASE("rl plot writes RUN_DIR/run.png by default and says which panels have no data", "[cli][plot]") {
  const TempDir run;
  std::ofstream(run / "metrics.jsonl") << "{\"step\": 1, \"reward\": 0.5}\n{\"step\": 2, \"reward\": 0.75}\n";
  const ProcessResult r = Plot(Quoted(run.str()));
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CheckPng(run / "run.png");
  const std::string script = ReadFile(run / "run.gp");
  CHECK_THAT(script, Contains("'not logged by this run'"));
  CHECK_THAT(script, Contains("'no eval.json or eval_before_grpo.json'"));
}

TEST_CASE("rl plot: a directory without metrics.jsonl is an error naming the file", "[cli][plot]") {
  const TempDir run;
  const ProcessResult r = Plot(Quoted(run.str()));
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.err, Contains(std::string("rl plot: ").append(run / "metrics.jsonl").append(": no such file")));
  CHECK_FALSE(fs::exists(run / "run.png"));
}

TEST_CASE("rl plot: a malformed line is an error naming the file and line", "[cli][plot]") {
  const TempDir run;
  std::ofstream(run / "metrics.jsonl") << "{\"step\": 1, \"reward\": 0.5}\n\n{\"step\": 2, \"reward\": 0.7\n";
  ProcessResult r = Plot(Quoted(run.str()));
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.err, Contains(run / "metrics.jsonl" + ":3: not a JSON object"));
  std::ofstream(run / "metrics.jsonl") << "{\"reward\": 0.5}\n";
  r = Plot(Quoted(run.str()));
  CHECK_THAT(r.err, Contains(run / "metrics.jsonl" + ":1: no numeric \"step\""));
}

TEST_CASE("rl plot: without gnuplot on PATH it says what to install", "[cli][plot]") {
  const TempDir tmp;
  const ProcessResult r = Plot("cli/plot_run -o " + Quoted(tmp / "x.png"), "env PATH=/nonexistent");
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.err, Contains("gnuplot not found on PATH: install gnuplot-nox"));
  CHECK_FALSE(fs::exists(tmp / "x.png"));
}
