// `rl serve` with no config: the built `rl` binary (RL_BINARY), run from a directory without
// configs/, serves the built-in default r1 spec on 127.0.0.1:8000, the first command a
// newcomer tries.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <csignal>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include "builtin_r1_spec.h"
#include "rewards/server/client.h"
#include "tests/support/files.h"
#include "tests/support/ports.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

namespace {

using Catch::Matchers::Contains;
using rl::testing::ReadFile;
using rl::testing::RunProcess;
using rl::testing::TempDir;

TEST_CASE("rl serve: the built-in spec is configs/rewards/r1.yaml's text", "[cli][serve]") {
  CHECK(std::string(rl::cli::kBuiltinR1Spec) == ReadFile(RL_R1_SPEC_FILE));
}

TEST_CASE("rl serve: with no arguments, the built-in r1 spec on 127.0.0.1:8000", "[cli][serve]") {
  TempDir dir;  // no configs/ here: the spec must come from the binary
  const auto printed = RunProcess("cd '" + dir.str() + "' && '" RL_BINARY "' serve --print-config");
  INFO(printed.err);
  REQUIRE(printed.exit_code == 0);
  CHECK_THAT(printed.out, Contains("serving the built-in default r1 spec"));
  const YAML::Node config = YAML::Load(printed.out);
  CHECK(config["host"].as<std::string>() == "127.0.0.1");
  CHECK(config["port"].as<int>() == 8000);
  CHECK(config["rewards"].size() == 0);

  // A config file states its rewards: one without any is still an error, not the default.
  std::ofstream(dir / "server.yaml") << "port: 9000\n";
  const auto with_file = RunProcess("cd '" + dir.str() + "' && '" RL_BINARY "' serve --config server.yaml");
  CHECK(with_file.exit_code == 1);
  CHECK_THAT(with_file.out + with_file.err, Contains("rewards: no reward configured"));

  // The built-in reward is called r1, and only it can be the default.
  const auto bad_default = RunProcess("cd '" + dir.str() + "' && '" RL_BINARY "' serve --default-reward x");
  CHECK(bad_default.exit_code == 1);
  CHECK_THAT(bad_default.out + bad_default.err, Contains("default_reward: 'x': expected 'r1'"));
}

TEST_CASE("rl serve: with only a port, /v1/score answers with the r1 rules", "[cli][serve]") {
  TempDir dir;
  const int port = rl::testing::FreeLoopbackPort();
  const std::string port_text = std::to_string(port);
  const std::string log = dir / "serve.log";
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    // From a directory without configs/, with the log kept for the checks below.
    const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || chdir(dir.str().c_str()) != 0) _exit(127);
    dup2(fd, STDOUT_FILENO);
    dup2(fd, STDERR_FILENO);
    execl(RL_BINARY, RL_BINARY, "serve", "--port", port_text.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }

  rl::rewards::server::ClientOptions options;
  options.urls = {"http://127.0.0.1:" + port_text};
  options.max_attempts = 1;
  options.connect_timeout_s = 1;
  rl::rewards::server::RewardClient client(options);
  bool up = false;
  for (int attempt = 0; attempt < 200 && !up; ++attempt) {
    try {
      up = client.Health()["status"] == "ok";
    } catch (const rl::rewards::server::RewardClientError&) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    if (waitpid(pid, nullptr, WNOHANG) == pid) break;  // exited before listening
  }
  INFO(ReadFile(log));
  if (!up) kill(pid, SIGKILL);
  REQUIRE(up);

  const std::vector<rl::rewards::Sample> samples = {
      {"", "<think>2+2</think><answer>4</answer>", "4", std::nullopt},  // format and answer
      {"", "<think>2+2</think><answer>5</answer>", "4", std::nullopt},  // format only
      {"", "the answer is \\boxed{4}", "4", std::nullopt},               // answer only
  };
  const std::vector<rl::rewards::RewardResult> results = client.Score(samples);
  kill(pid, SIGTERM);
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK_THAT(ReadFile(log), Contains("serving the built-in default r1 spec"));

  REQUIRE(results.size() == 3);
  const double expected_format[] = {1, 1, 0};
  const double expected_accuracy[] = {1, 0, 1};
  for (size_t i = 0; i < results.size(); ++i) {
    INFO("sample " << i);
    REQUIRE(results[i].components.size() == 2);
    CHECK(results[i].components[0].rule == "format.think_answer");
    CHECK(results[i].components[0].value == expected_format[i]);
    CHECK(results[i].components[1].rule == "accuracy.math");
    CHECK(results[i].components[1].value == expected_accuracy[i]);
    REQUIRE(results[i].total.has_value());
    CHECK(*results[i].total == expected_format[i] + expected_accuracy[i]);
  }
}

}  // namespace
