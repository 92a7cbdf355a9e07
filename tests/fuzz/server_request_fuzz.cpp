// Whole HTTP requests, as raw bytes, through the reward server's parser, limits, routing and
// handlers (HandleRawRequest: the path a session runs, without a socket). The first byte picks
// one of three servers: open, behind a bearer token, or with a 512-byte body limit.
// Promises checked (rewards/server/request_reader.h, handlers.h): any bytes get either no
// answer (the request never completed) or one well-formed HTTP answer, never an exception;
// no answer is a 500 (validation leaves nothing that throws); a JSON answer's body is JSON.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "rewards/reward.h"
#include "rewards/server/metrics.h"
#include "rewards/server/request_reader.h"
#include "rewards/server/server_config.h"
#include "tests/fuzz/fuzz_input.h"

namespace {

using rl::fuzz::Require;
using rl::rewards::server::ServerConfig;

constexpr const char* kR1Spec = R"(
special_tokens: ["<|im_end|>", "<|endoftext|>"]
rules:
  - {name: format.think_answer, weight: 1}
  - {name: accuracy.math, weight: 1, params: {correct: 1, incorrect: 0}}
)";
constexpr const char* kFormatSpec = R"(
rules:
  - {name: format.think_answer, weight: 0.5}
)";

std::shared_ptr<const rl::rewards::Reward> MakeReward(const char* spec) {
  std::string error;
  std::shared_ptr<const rl::rewards::Reward> reward =
      rl::rewards::Reward::FromYamlText(spec, &error, "fuzz spec");
  Require(reward != nullptr, "the harness's reward specs load");
  return reward;
}

// One server: its config, rewards and metrics, as a live server holds them.
struct FuzzServer {
  ServerConfig config;
  std::shared_ptr<const rl::rewards::server::RewardRegistry> registry;
  rl::rewards::server::ServerMetrics metrics;

  explicit FuzzServer(ServerConfig c) : config(std::move(c)) {
    config.rewards = {{"r1", "(in process)"}, {"format", "(in process)"}};
    config.default_reward = "r1";
    std::vector<rl::rewards::server::NamedReward> named = {{"r1", "(in process)", MakeReward(kR1Spec)},
                                                  {"format", "(in process)", MakeReward(kFormatSpec)}};
    std::string error;
    registry = rl::rewards::server::RewardRegistry::FromRewards(std::move(named), "r1", &error);
    Require(registry != nullptr, "the harness's registry builds");
    Require(rl::rewards::server::ValidateServerConfig(config, &error), "the harness's configs are valid");
  }
};

FuzzServer& Server(uint8_t selector) {
  static FuzzServer* servers[3] = {
      new FuzzServer(ServerConfig{}),
      new FuzzServer([] {
        ServerConfig c;
        c.auth_token = "s3cret";
        return c;
      }()),
      new FuzzServer([] {
        ServerConfig c;
        c.max_body_bytes = 512;
        return c;
      }()),
  };
  return *servers[selector % 3];
}

// The status code of an answer "HTTP/1.x NNN ...", or -1 when the status line is malformed.
int StatusOf(std::string_view answer) {
  if (answer.size() < 12 || answer.substr(0, 7) != "HTTP/1." || answer[8] != ' ') return -1;
  int status = 0;
  for (size_t i = 9; i < 12; ++i) {
    if (answer[i] < '0' || answer[i] > '9') return -1;
    status = status * 10 + (answer[i] - '0');
  }
  return status;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  rl::fuzz::FuzzInput input(data, size);
  FuzzServer& server = Server(input.Byte());
  const std::string_view bytes = input.Rest().value_or("");
  const std::string answer = rl::rewards::server::HandleRawRequest(
      bytes, rl::rewards::server::HandlerContext{server.config, *server.registry, server.metrics});
  if (answer.empty()) return 0;
  const int status = StatusOf(answer);
  Require(status >= 200 && status <= 599, "an answer starts with a status line");
  Require(status != 500, "no request makes a handler throw (500)");
  const size_t end_of_header = answer.find("\r\n\r\n");
  Require(end_of_header != std::string::npos, "an answer has a complete header");
  const std::string_view header(answer.data(), end_of_header);
  if (header.find("Content-Type: application/json") != std::string_view::npos) {
    Require(nlohmann::json::accept(answer.substr(end_of_header + 4)), "a JSON answer is JSON");
  }
  return 0;
}
