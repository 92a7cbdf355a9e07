// End-to-end tests of `rl score`: runs the built `rl` binary (RL_BINARY) on small files.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

// A fresh directory under the system temp dir, removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    static int counter = 0;
    path_ = fs::temp_directory_path() /
            ("rl_score_test_" + std::to_string(getpid()) + "_" + std::to_string(counter++));
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string File(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

struct RunResult {
  int exit_code;
  std::string err;
};

std::string ReadAll(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

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

RunResult RunScore(const TempDir& dir, const std::string& arguments) {
  const std::string err_path = dir.File("stderr.txt");
  const std::string command =
      std::string("'") + RL_BINARY + "' score " + arguments + " 2> '" + err_path + "'";
  int status = std::system(command.c_str());
  int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return {code, ReadAll(err_path)};
}

const char* const kGoodRows =
    R"({"id": 1, "completion": "<think>x</think><answer>\\boxed{4}</answer>", "answer": "4"})"
    "\n"
    R"({"id": 2, "completion": "<think>x</think><answer>\\boxed{5}</answer>", "answer": 4})"
    "\n";

}  // namespace

TEST_CASE("rl score: the shipped example file with the r1 spec", "[cli]") {
  TempDir dir;
  const std::string out = dir.File("out.jsonl");
  RunResult run =
      RunScore(dir,
               "--rewards ../configs/rewards/r1.yaml --input ../examples/data/completions.jsonl "
               "--output '" +
                   out + "'");
  INFO(run.err);
  REQUIRE(run.exit_code == 0);
  std::vector<std::string> in_lines = Lines(ReadAll("../examples/data/completions.jsonl"));
  std::vector<std::string> out_lines = Lines(ReadAll(out));
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
  const std::string in = dir.File("in.jsonl");
  const std::string out = dir.File("out.jsonl");
  WriteAll(in, std::string(kGoodRows) + "\n{\"completion\": \"unterminated\n" + kGoodRows);
  RunResult run = RunScore(
      dir, "--rewards ../configs/rewards/r1.yaml --input '" + in + "' --output '" + out + "'");
  CHECK(run.exit_code == 1);
  CHECK(run.err.find(in + ":4: invalid JSON") != std::string::npos);
  CHECK_FALSE(fs::exists(out));
  CHECK_FALSE(fs::exists(out + ".partial"));

  WriteAll(in, std::string(kGoodRows) + "{\"completion\": 7}\n");
  run = RunScore(
      dir, "--rewards ../configs/rewards/r1.yaml --input '" + in + "' --output '" + out + "'");
  CHECK(run.exit_code == 1);
  CHECK(run.err.find(in + ":3: key 'completion': expected a string, got number") !=
        std::string::npos);

  WriteAll(in, "{\"text\": \"a\"}\n");
  run = RunScore(
      dir, "--rewards ../configs/rewards/r1.yaml --input '" + in + "' --output '" + out + "'");
  CHECK(run.exit_code == 1);
  CHECK(run.err.find(in + ":1: key 'completion' missing") != std::string::npos);

  WriteAll(in, "[1, 2]\n");
  run = RunScore(
      dir, "--rewards ../configs/rewards/r1.yaml --input '" + in + "' --output '" + out + "'");
  CHECK(run.err.find(in + ":1: expected a JSON object, got array") != std::string::npos);

  WriteAll(in, "{\"completion\": \"a\", \"completion_tokens\": -1}\n");
  run = RunScore(
      dir, "--rewards ../configs/rewards/r1.yaml --input '" + in + "' --output '" + out + "'");
  CHECK(run.err.find(in + ":1: key 'completion_tokens': expected a non-negative integer") !=
        std::string::npos);
}

TEST_CASE("rl score: --skip-bad counts and reports bad rows", "[cli]") {
  TempDir dir;
  const std::string in = dir.File("in.jsonl");
  const std::string out = dir.File("out.jsonl");
  WriteAll(in, std::string(kGoodRows) + "not json\n{\"completion\": [1]}\n" + kGoodRows);
  RunResult run = RunScore(dir, "--rewards ../configs/rewards/r1.yaml --input '" + in +
                                    "' --output '" + out + "' --skip-bad");
  INFO(run.err);
  REQUIRE(run.exit_code == 0);
  std::vector<std::string> out_lines = Lines(ReadAll(out));
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
  const std::string in = dir.File("in.jsonl");
  const std::string spec = dir.File("spec.yaml");
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
  RunResult one = RunScore(dir, base + " --output '" + dir.File("a.jsonl") + "' --threads 1");
  INFO(one.err);
  REQUIRE(one.exit_code == 0);
  RunResult many =
      RunScore(dir, base + " --output '" + dir.File("b.jsonl") + "' --threads 3 --chunk-rows 7");
  REQUIRE(many.exit_code == 0);
  const std::string a = ReadAll(dir.File("a.jsonl"));
  CHECK(a == ReadAll(dir.File("b.jsonl")));
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
  const std::string spec = dir.File("spec.yaml");
  WriteAll(spec, "rules:\n  - name: format.think_answer\n    weight: heavy\n");
  WriteAll(dir.File("in.jsonl"), kGoodRows);
  RunResult run = RunScore(dir, "--rewards '" + spec + "' --input '" + dir.File("in.jsonl") +
                                    "' --output '" + dir.File("out.jsonl") + "'");
  CHECK(run.exit_code == 2);
  CHECK(run.err.find(spec + ":3: key 'rules[0].weight': expected a number, got a string") !=
        std::string::npos);
}
