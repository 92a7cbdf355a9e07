// End-to-end tests of `rl score`: runs the built `rl` binary (RL_BINARY) on small files.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/files.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

namespace fs = std::filesystem;
using rl::testing::ProcessResult;
using rl::testing::RunProcess;
using rl::testing::ReadFile;
using rl::testing::TempDir;

namespace {

void WriteAll(const std::string& path, const std::string& text) {
  std::ofstream file(path, std::ios::binary);
  file << text;
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::stringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

ProcessResult RunScore(const std::string& arguments) {
  return RunProcess(std::string("'") + RL_BINARY + "' score " + arguments);
}

// `rl score` on `rows` with the r1 spec and `flags`, writing dir/out.jsonl.
ProcessResult RunOnRows(const TempDir& dir, const std::string& rows, const std::string& flags = "") {
  WriteAll((dir / "in.jsonl"), rows);
  return RunScore("--rewards ../configs/rewards/r1.yaml --input '" + (dir / "in.jsonl") +
                           "' --output '" + (dir / "out.jsonl") + "' " + flags);
}

// "[[...[]...]]" with `levels` arrays.
std::string Nested(int levels) {
  const size_t n = static_cast<size_t>(levels);
  return std::string(n, '[') + std::string(n, ']');
}

const char* const kGoodRows =
    R"({"id": 1, "completion": "<think>x</think><answer>\\boxed{4}</answer>", "answer": "4"})"
    "\n"
    R"({"id": 2, "completion": "<think>x</think><answer>\\boxed{5}</answer>", "answer": 4})"
    "\n";

}  // namespace

TEST_CASE("rl score: the shipped example file with the r1 spec", "[cli]") {
  TempDir dir;
  const std::string out = (dir / "out.jsonl");
  ProcessResult run =
      RunScore("--rewards ../configs/rewards/r1.yaml --input ../examples/data/completions.jsonl "
               "--output '" +
                   out + "'");
  INFO(run.err);
  REQUIRE(run.exit_code == 0);
  std::vector<std::string> in_lines = Lines(ReadFile("../examples/data/completions.jsonl"));
  std::vector<std::string> out_lines = Lines(ReadFile(out));
  REQUIRE(out_lines.size() == in_lines.size());
  for (size_t i = 0; i < in_lines.size(); ++i) {
    auto input = nlohmann::ordered_json::parse(in_lines[i]);
    auto output = nlohmann::ordered_json::parse(out_lines[i]);
    // The input object comes first, keys in their order, then the three new keys.
    auto key = output.begin();
    for (auto it = input.begin(); it != input.end(); ++it, ++key) {
      REQUIRE(key.key() == it.key());
      REQUIRE(key.value() == it.value());
    }
    REQUIRE(output.contains("reward"));
    REQUIRE(output["components"].contains("format.think_answer"));
    REQUIRE(output["components"].contains("accuracy.math"));
    REQUIRE(output["status"].is_string());
    if (output["status"] == "ok")
      REQUIRE(output["reward"].is_number());
    else
      REQUIRE(output["reward"].is_null());
  }
  CHECK(run.err.find("40 rows scored") != std::string::npos);
  CHECK(run.err.find("missing_gold") != std::string::npos);
  CHECK(run.err.find("format.think_answer") != std::string::npos);
  // No progress bar when stderr is not a terminal.
  CHECK(run.err.find('\r') == std::string::npos);
  CHECK_FALSE(fs::exists(out + ".partial"));
}

TEST_CASE("rl score: a bad row stops the run with file and line", "[cli]") {
  TempDir dir;
  const std::string in = (dir / "in.jsonl");
  const std::string out = (dir / "out.jsonl");
  WriteAll(in, std::string(kGoodRows) + "\n{\"completion\": \"unterminated\n" + kGoodRows);
  ProcessResult run = RunScore("--rewards ../configs/rewards/r1.yaml --input '" + in + "' --output '" + out + "'");
  CHECK(run.exit_code == 1);
  CHECK(run.err.find(in + ":4: invalid JSON") != std::string::npos);
  CHECK_FALSE(fs::exists(out));
  CHECK_FALSE(fs::exists(out + ".partial"));

  WriteAll(in, std::string(kGoodRows) + "{\"completion\": 7}\n");
  run = RunScore("--rewards ../configs/rewards/r1.yaml --input '" + in + "' --output '" + out + "'");
  CHECK(run.exit_code == 1);
  CHECK(run.err.find(in + ":3: key 'completion': expected a string, got number") !=
        std::string::npos);

  WriteAll(in, "{\"text\": \"a\"}\n");
  run = RunScore("--rewards ../configs/rewards/r1.yaml --input '" + in + "' --output '" + out + "'");
  CHECK(run.exit_code == 1);
  CHECK(run.err.find(in + ":1: key 'completion' missing") != std::string::npos);

  WriteAll(in, "[1, 2]\n");
  run = RunScore("--rewards ../configs/rewards/r1.yaml --input '" + in + "' --output '" + out + "'");
  CHECK(run.err.find(in + ":1: expected a JSON object, got array") != std::string::npos);

  WriteAll(in, "{\"completion\": \"a\", \"completion_tokens\": -1}\n");
  run = RunScore("--rewards ../configs/rewards/r1.yaml --input '" + in + "' --output '" + out + "'");
  CHECK(run.err.find(in + ":1: key 'completion_tokens': expected a non-negative integer") !=
        std::string::npos);
}

TEST_CASE("rl score: --skip-bad counts and reports bad rows", "[cli]") {
  TempDir dir;
  const std::string in = (dir / "in.jsonl");
  const std::string out = (dir / "out.jsonl");
  WriteAll(in, std::string(kGoodRows) + "not json\n{\"completion\": [1]}\n" + kGoodRows);
  ProcessResult run = RunScore("--rewards ../configs/rewards/r1.yaml --input '" + in +
                                    "' --output '" + out + "' --skip-bad");
  INFO(run.err);
  REQUIRE(run.exit_code == 0);
  std::vector<std::string> out_lines = Lines(ReadFile(out));
  REQUIRE(out_lines.size() == 4);
  CHECK(nlohmann::json::parse(out_lines[0])["reward"] == 2.0);
  CHECK(nlohmann::json::parse(out_lines[1])["reward"] == 1.0);  // a numeric gold is read too
  CHECK(nlohmann::json::parse(out_lines[3])["id"] == 2);
  CHECK(run.err.find("4 rows scored") != std::string::npos);
  CHECK(run.err.find("2 bad rows skipped") != std::string::npos);
  CHECK(run.err.find(in + ":3: invalid JSON") != std::string::npos);
  CHECK(run.err.find(in + ":4: key 'completion': expected a string, got array") !=
        std::string::npos);
}

TEST_CASE("rl score: custom keys, unscorable rows, chunks and threads", "[cli]") {
  TempDir dir;
  const std::string in = (dir / "in.jsonl");
  const std::string spec = (dir / "spec.yaml");
  WriteAll(spec,
           "rules:\n"
           "  - {name: format.think_answer}\n"
           "  - {name: length.soft_overlong, params: {max_length: 100, cache_length: 50}}\n");
  std::string rows;
  for (int i = 0; i < 50; ++i) {
    rows += "{\"text\": \"<think>t</think><answer>" + std::to_string(i) + "</answer>\"";
    if (i % 5 != 0) rows += ", \"n\": " + std::to_string(i * 2);
    rows += "}\n";
  }
  WriteAll(in, rows);
  const std::string base =
      "--rewards '" + spec + "' --input '" + in + "' --completion-key text --tokens-key n";
  ProcessResult one = RunScore(base + " --output '" + (dir / "a.jsonl") + "' --threads 1");
  INFO(one.err);
  REQUIRE(one.exit_code == 0);
  ProcessResult many =
      RunScore(base + " --output '" + (dir / "b.jsonl") + "' --threads 3 --chunk-rows 7");
  REQUIRE(many.exit_code == 0);
  const std::string a = ReadFile((dir / "a.jsonl"));
  CHECK(a == ReadFile((dir / "b.jsonl")));
  std::vector<std::string> lines = Lines(a);
  REQUIRE(lines.size() == 50);
  auto first = nlohmann::json::parse(lines[0]);  // no token count: unscorable, not 0
  CHECK(first["reward"].is_null());
  CHECK(first["status"] == "missing_token_count");
  CHECK(first["components"]["length.soft_overlong"].is_null());
  CHECK(first["components"]["format.think_answer"] == 1.0);
  auto last = nlohmann::json::parse(lines[49]);  // 98 tokens: 1 + (50 - 98) / 50
  CHECK(last["reward"].get<double>() == Approx(1 - 48.0 / 50));
  CHECK(one.err.find("missing_token_count") != std::string::npos);
}

TEST_CASE("rl score: a bad spec names file and line", "[cli]") {
  TempDir dir;
  const std::string spec = (dir / "spec.yaml");
  WriteAll(spec, "rules:\n  - name: format.think_answer\n    weight: heavy\n");
  WriteAll((dir / "in.jsonl"), kGoodRows);
  ProcessResult run = RunScore("--rewards '" + spec + "' --input '" + (dir / "in.jsonl") +
                                    "' --output '" + (dir / "out.jsonl") + "'");
  CHECK(run.exit_code == 2);
  CHECK(run.err.find(spec + ":3: key 'rules[0].weight': expected a number, got 'heavy'") !=
        std::string::npos);
}

TEST_CASE("rl score: a number outside double's range is a bad row", "[cli]") {
  TempDir dir;
  const std::string in = (dir / "in.jsonl");
  const std::string out = (dir / "out.jsonl");
  const std::string rows =
      std::string(kGoodRows) + "{\"completion\": \"x\", \"answer\": 1e400}\n" + kGoodRows;
  ProcessResult run = RunOnRows(dir, rows, "--skip-bad");
  INFO(run.err);
  REQUIRE(run.exit_code == 0);
  CHECK(Lines(ReadFile(out)).size() == 4);
  CHECK(run.err.find("1 bad rows skipped") != std::string::npos);
  CHECK(run.err.find(in + ":3: number overflow parsing '1e400'") != std::string::npos);
  CHECK_FALSE(fs::exists(out + ".partial"));

  // Without --skip-bad the run stops, and the output of an earlier run is left as it was.
  WriteAll(out, "earlier\n");
  run = RunOnRows(dir, rows);
  CHECK(run.exit_code == 1);
  CHECK(run.err.find(in + ":3: number overflow parsing '1e400'") != std::string::npos);
  CHECK(ReadFile(out) == "earlier\n");
  CHECK_FALSE(fs::exists(out + ".partial"));
}

TEST_CASE("rl score: a row nested deeper than 512 levels is a bad row", "[cli]") {
  TempDir dir;
  const std::string in = (dir / "in.jsonl");
  const std::string out = (dir / "out.jsonl");
  // 85,000 levels overflowed the stack when the row was echoed back.
  const std::string deep =
      "{\"completion\": \"x\", \"answer\": \"1\", \"meta\": " + Nested(85000) + "}\n";
  ProcessResult run = RunOnRows(dir, kGoodRows + deep + kGoodRows, "--skip-bad");
  INFO(run.err);
  REQUIRE(run.exit_code == 0);
  const std::string scored = ReadFile(out);
  CHECK(Lines(scored).size() == 4);
  CHECK(run.err.find(in + ":3: nested deeper than 512 levels") != std::string::npos);
  CHECK_FALSE(fs::exists(out + ".partial"));

  run = RunOnRows(dir, kGoodRows + deep);
  CHECK(run.exit_code == 1);
  CHECK(run.err.find(in + ":3: nested deeper than 512 levels") != std::string::npos);
  CHECK(ReadFile(out) == scored);
  CHECK_FALSE(fs::exists(out + ".partial"));

  // 512 levels (the row's object and 511 arrays) are read and echoed whole.
  const std::string limit = "{\"completion\": \"x\", \"meta\": " + Nested(511) + "}\n";
  run = RunOnRows(dir, limit);
  REQUIRE(run.exit_code == 0);
  CHECK(ReadFile(out).find("\"meta\":" + Nested(511) + ",") != std::string::npos);
}

TEST_CASE("rl score: hostile token counts, bytes and line ends", "[cli]") {
  TempDir dir;
  const std::string in = (dir / "in.jsonl");
  const std::string out = (dir / "out.jsonl");
  const std::string rows =
      "{\"completion\": \"a\", \"completion_tokens\": -1}\n"
      "{\"completion\": \"a\", \"completion_tokens\": 3.5}\n"
      "{\"completion\": \"a\", \"completion_tokens\": 9223372036854775808}\n"
      "{\"completion\": \"a\", \"completion_tokens\": 1e400}\n"
      "{\"completion\": \"a\", \"completion_tokens\": 18446744073709551616}\n"
      "{\"completion\": \"\xff\xfe\"}\n"
      "\n  \t\r\n"
      "{\"completion\": \"crlf\", \"completion_tokens\": 9223372036854775807}\r\n"
      "{\"completion\": \"last line, no newline\"}";
  ProcessResult run = RunOnRows(dir, rows, "--skip-bad");
  INFO(run.err);
  REQUIRE(run.exit_code == 0);
  std::vector<std::string> lines = Lines(ReadFile(out));
  REQUIRE(lines.size() == 2);
  CHECK(nlohmann::json::parse(lines[0])["completion_tokens"] == INT64_MAX);
  CHECK(nlohmann::json::parse(lines[1])["completion"] == "last line, no newline");
  CHECK(run.err.find("6 bad rows skipped") != std::string::npos);
  const std::string tokens = ": key 'completion_tokens': expected a non-negative integer, got ";
  CHECK(run.err.find(in + ":1" + tokens + "-1") != std::string::npos);
  CHECK(run.err.find(in + ":2" + tokens + "3.5") != std::string::npos);
  CHECK(run.err.find(in + ":3" + tokens + "9223372036854775808") != std::string::npos);
  CHECK(run.err.find(in + ":4: number overflow parsing '1e400'") != std::string::npos);
  CHECK(run.err.find(in + ":5" + tokens + "1.8446744073709552e+19") != std::string::npos);
  CHECK(run.err.find(in + ":6: invalid JSON") != std::string::npos);
  // Messages are UTF-8: the ill-formed bytes they quote become U+FFFD.
  CHECK(run.err.find('\xff') == std::string::npos);
}

TEST_CASE("rl score: a line longer than --max-line-bytes is a bad row", "[cli]") {
  TempDir dir;
  const std::string in = (dir / "in.jsonl");
  const std::string rows = "{\"completion\": \"" + std::string(1000, 'x') + "\"}\n" + kGoodRows;
  ProcessResult run = RunOnRows(dir, rows, "--max-line-bytes 200 --skip-bad");
  INFO(run.err);
  REQUIRE(run.exit_code == 0);
  CHECK(Lines(ReadFile((dir / "out.jsonl"))).size() == 2);
  CHECK(run.err.find(in + ":1: line longer than 200 bytes (--max-line-bytes)") !=
        std::string::npos);

  run = RunOnRows(dir, rows, "--max-line-bytes 200");
  CHECK(run.exit_code == 1);
  CHECK(run.err.find(in + ":1: line longer than 200 bytes") != std::string::npos);
}

TEST_CASE("rl score: SIGTERM and SIGINT leave no partial output", "[cli]") {
  for (int signal : {SIGTERM, SIGINT}) {
    TempDir dir;
    const std::string out = (dir / "out.jsonl");
    WriteAll(out, "earlier\n");
    int input[2];
    REQUIRE(pipe(input) == 0);
    const pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {  // the child: `rl score` reading the pipe, which stays open
      std::signal(SIGINT, SIG_DFL);  // a shell's background job may inherit it ignored
      dup2(input[0], STDIN_FILENO);
      close(input[1]);
      const int null = open("/dev/null", O_WRONLY);
      dup2(null, STDERR_FILENO);
      execl(RL_BINARY, RL_BINARY, "score", "--rewards", "../configs/rewards/r1.yaml", "--input",
            "-", "--output", out.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    close(input[0]);
    REQUIRE(write(input[1], kGoodRows, std::strlen(kGoodRows)) > 0);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (!fs::exists(out + ".partial") && std::chrono::steady_clock::now() < deadline)
      usleep(10000);
    CHECK(fs::exists(out + ".partial"));
    kill(pid, signal);
    int status = 0;
    waitpid(pid, &status, 0);
    close(input[1]);
    CHECK(WIFSIGNALED(status));
    CHECK(WTERMSIG(status) == signal);
    CHECK_FALSE(fs::exists(out + ".partial"));
    CHECK(ReadFile(out) == "earlier\n");
  }
}

TEST_CASE("rl score: a read error stops the run cleanly", "[cli]") {
  TempDir dir;
  const std::string out = (dir / "out.jsonl");
  fs::create_directories((dir / "a_directory"));
  ProcessResult run = RunScore("--rewards ../configs/rewards/r1.yaml --input '" +
                                    (dir / "a_directory") + "' --output '" + out + "'");
  CHECK(run.exit_code == 1);
  CHECK(run.err.find((dir / "a_directory") + ": read error") != std::string::npos);
  CHECK_FALSE(fs::exists(out));
  CHECK_FALSE(fs::exists(out + ".partial"));
}
