// Shared by the reward server tests: in-process rewards, the handlers called without a
// socket, a server on an ephemeral loopback port, and a small synchronous HTTP client that can
// also misbehave (stall, send garbage).
#pragma once

#include <array>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "rewards/reward.h"
#include "rewards/server/handlers.h"
#include "rewards/server/request_reader.h"
#include "rewards/server/server.h"
#include "rewards/server/server_config.h"

namespace rl::rewards::server::testing {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using json = nlohmann::json;

// The R1 reward: strict format plus math accuracy.
inline constexpr const char* kR1Spec = R"(
special_tokens: ["<|im_end|>", "<|endoftext|>"]
rules:
  - {name: format.think_answer, weight: 1}
  - {name: accuracy.math, weight: 1, params: {correct: 1, incorrect: 0}}
)";
// A reward without an answer check.
inline constexpr const char* kFormatOnlySpec = R"(
special_tokens: ["<|im_end|>", "<|endoftext|>"]
rules:
  - {name: format.think_answer, weight: 0.5}
)";

inline std::shared_ptr<const rewards::Reward> MakeReward(const char* spec) {
  std::string error;
  std::shared_ptr<const rewards::Reward> reward = rewards::Reward::FromYamlText(spec, &error, "test spec");
  INFO(error);
  REQUIRE(reward);
  return reward;
}

inline std::shared_ptr<const RewardRegistry> MakeRegistry() {
  std::string error;
  std::vector<NamedReward> named = {{"r1", "(in process)", MakeReward(kR1Spec)},
                                    {"format", "(in process)", MakeReward(kFormatOnlySpec)}};
  std::shared_ptr<const RewardRegistry> registry = RewardRegistry::FromRewards(std::move(named), "r1", &error);
  INFO(error);
  REQUIRE(registry);
  return registry;
}

// A test config: ephemeral loopback port, short timeouts, no summary lines.
inline ServerConfig TestConfig() {
  ServerConfig config;
  config.host = "127.0.0.1";
  config.port = 0;
  config.rewards = {{"r1", "(in process)"}, {"format", "(in process)"}};
  config.default_reward = "r1";
  config.summary_interval_s = 0;
  config.score_threads = 2;
  return config;
}

inline std::unique_ptr<Server> StartServer(const ServerConfig& config,
                                           std::shared_ptr<const RewardRegistry> registry = MakeRegistry()) {
  spdlog::set_level(spdlog::level::warn);  // no start/stop summaries in test output
  std::string error;
  std::unique_ptr<Server> server = Server::Start(config, std::move(registry), &error);
  INFO(error);
  REQUIRE(server);
  return server;
}

// The handlers with a test config and registry, called without a socket.
struct HandlerFixture {
  ServerConfig config = TestConfig();
  std::shared_ptr<const RewardRegistry> registry = MakeRegistry();
  ServerMetrics metrics;
  std::string token;  // sent as a bearer token when config.auth_token is set

  Response Call(http::verb verb, const std::string& target, const std::string& body = "",
                const std::string& content_type = "application/json") {
    Request req{verb, target, 11};
    if (!content_type.empty()) req.set(http::field::content_type, content_type);
    if (!config.auth_token.empty() && !token.empty()) {
      req.set(http::field::authorization, "Bearer " + token);
    }
    req.body() = body;
    req.prepare_payload();
    return Handle(req, HandlerContext{config, *registry, metrics});
  }
  Response Post(const std::string& target, const json& body) {
    return Call(http::verb::post, target, body.dump());
  }
  // Raw request bytes in, the server's raw answer out (HandleRawRequest).
  std::string Raw(std::string_view bytes) {
    return HandleRawRequest(bytes, HandlerContext{config, *registry, metrics});
  }
};

// A POST of a JSON body as the bytes a client writes, for sending by hand.
inline std::string RawPost(const std::string& target, const std::string& body) {
  return "POST " + target + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n\r\n" + body;
}

// ChatML as Qwen2.5's template renders a user turn with the generation prompt.
inline std::string ChatPrompt(const std::string& question) {
  return "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n" +
         question + "<|im_end|>\n<|im_start|>assistant\n";
}

inline std::string R1Completion(const std::string& answer) {
  return "<think>Let me compute this carefully.</think><answer>" + answer + "</answer><|im_end|>";
}

// A synchronous keep-alive HTTP connection to the server under test.
class Connection {
 public:
  explicit Connection(uint16_t port) : stream_(ioc_) {
    stream_.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
  }

  http::response<http::string_body> Send(http::request<http::string_body> req) {
    req.set(http::field::host, "127.0.0.1");
    req.prepare_payload();
    http::write(stream_, req);
    return Read();
  }

  http::response<http::string_body> Post(const std::string& target, const std::string& body,
                                         const std::string& content_type = "application/json",
                                         const std::string& token = "") {
    http::request<http::string_body> req{http::verb::post, target, 11};
    req.set(http::field::content_type, content_type);
    if (!token.empty()) req.set(http::field::authorization, "Bearer " + token);
    req.body() = body;
    return Send(std::move(req));
  }

  http::response<http::string_body> Get(const std::string& target, const std::string& token = "") {
    http::request<http::string_body> req{http::verb::get, target, 11};
    if (!token.empty()) req.set(http::field::authorization, "Bearer " + token);
    return Send(std::move(req));
  }

  http::response<http::string_body> Read() {
    http::response_parser<http::string_body> parser;
    parser.body_limit(boost::none);
    http::read(stream_, buffer_, parser);
    return parser.release();
  }

  void WriteRaw(const std::string& bytes) { net::write(stream_.socket(), net::buffer(bytes)); }
  // Bytes received and not yet read.
  size_t Available() { return stream_.socket().available() + buffer_.size(); }

  // Reads until the server closes the connection (or `limit` passes); returns what arrived
  // and whether it was closed. Asynchronous reads, since a stream's expiry bounds only those.
  std::pair<std::string, bool> ReadUntilClosed(std::chrono::milliseconds limit) {
    std::string data;
    std::array<char, 4096> chunk;
    beast::error_code last;
    std::function<void()> read_more = [&] {
      stream_.async_read_some(net::buffer(chunk), [&](beast::error_code ec, size_t n) {
        data.append(chunk.data(), n);
        last = ec;
        if (!ec) read_more();
      });
    };
    stream_.expires_after(limit);
    read_more();
    ioc_.restart();
    ioc_.run();
    return {data, last != beast::error::timeout};
  }

 private:
  net::io_context ioc_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
};

inline json ParseBody(const http::response<http::string_body>& res) {
  return json::parse(res.body());
}

}  // namespace rl::rewards::server::testing
