#include "rewards/server/client.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <mutex>
#include <optional>
#include <random>
#include <thread>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace rl::rewards::server {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using json = nlohmann::json;
using ordered_json = nlohmann::ordered_json;  // keeps the rules' order in "components"

struct ParsedUrl {
  std::string host;
  std::string port;
  std::string base_path;  // without a trailing '/'
};

ParsedUrl ParseUrl(const std::string& url) {
  constexpr std::string_view kScheme = "http://";
  if (url.compare(0, kScheme.size(), kScheme) != 0) {
    throw RewardClientError(fmt::format("reward client: url '{}': expected http://host:port", url), 0);
  }
  std::string_view rest = std::string_view(url).substr(kScheme.size());
  const size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  ParsedUrl parsed;
  if (slash != std::string_view::npos) parsed.base_path = std::string(rest.substr(slash));
  while (!parsed.base_path.empty() && parsed.base_path.back() == '/') parsed.base_path.pop_back();
  size_t colon = authority.rfind(':');
  if (!authority.empty() && authority.front() == '[') {  // [::1]:8000
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) colon = std::string_view::npos;
    parsed.host = std::string(authority.substr(1, close == std::string_view::npos ? 0 : close - 1));
    colon = (close != std::string_view::npos && close + 1 < authority.size()) ? close + 1
                                                                            : std::string_view::npos;
  } else {
    parsed.host = std::string(authority.substr(0, colon));
  }
  parsed.port = colon == std::string_view::npos ? "80" : std::string(authority.substr(colon + 1));
  if (parsed.host.empty() || parsed.port.empty() ||
      !std::all_of(parsed.port.begin(), parsed.port.end(), ::isdigit)) {
    throw RewardClientError(fmt::format("reward client: url '{}': expected http://host:port", url), 0);
  }
  return parsed;
}

// One keep-alive connection with its own io_context: requests run the context until their
// operations finish, which gives synchronous calls with real timeouts.
struct Connection {
  net::io_context ioc;
  beast::tcp_stream stream{ioc};
  beast::flat_buffer buffer;
  bool open = false;
};

struct Answer {
  int status = 0;            // 0: no answer (connection error or timeout)
  std::string body;
  std::string error;         // what went wrong when status == 0
  double retry_after_s = 0;
};

template <typename Duration>
auto ToChrono(double seconds) {
  return std::chrono::duration_cast<Duration>(std::chrono::duration<double>(seconds));
}

bool Retryable(int status) {
  return status == 0 || status == 408 || status == 429 || status == 500 || status == 502 ||
         status == 503 || status == 504;
}

std::string ServerMessage(const Answer& answer) {
  if (answer.status == 0) return answer.error;
  const json body = json::parse(answer.body, nullptr, /*allow_exceptions=*/false);
  if (body.is_object() && body.contains("error") && body["error"].is_string()) {
    return fmt::format("HTTP {}: {}", answer.status, body["error"].get<std::string>());
  }
  return fmt::format("HTTP {}: {}", answer.status, answer.body.substr(0, 200));
}

json SampleJson(const rewards::Sample& sample) {
  json item = {{"completion", sample.completion}};
  if (!sample.prompt.empty()) item["prompt"] = sample.prompt;
  if (sample.gold) item["answer"] = *sample.gold;
  if (sample.completion_tokens) item["completion_tokens"] = *sample.completion_tokens;
  return item;
}

}  // namespace

struct RewardClient::Impl {
  ClientOptions options;
  ParsedUrl url;
  std::mutex mutex;  // guards idle
  std::vector<std::unique_ptr<Connection>> idle;
  std::atomic<int64_t> requests{0}, attempts{0}, connections{0}, reconnects{0};

  std::unique_ptr<Connection> Acquire() {
    std::lock_guard<std::mutex> lock(mutex);
    if (idle.empty()) return std::make_unique<Connection>();
    auto c = std::move(idle.back());
    idle.pop_back();
    return c;
  }

  void Release(std::unique_ptr<Connection> c) {
    std::lock_guard<std::mutex> lock(mutex);
    idle.push_back(std::move(c));
  }

  bool Connect(Connection& c, std::string* error) {
    beast::error_code ec;
    tcp::resolver resolver(c.ioc);
    const auto endpoints = resolver.resolve(url.host, url.port, ec);
    if (ec) {
      *error = fmt::format("cannot resolve {}: {}", url.host, ec.message());
      return false;
    }
    c.stream.close();
    c.buffer.clear();
    c.stream.expires_after(ToChrono<std::chrono::milliseconds>(options.connect_timeout_s));
    c.stream.async_connect(endpoints, [&](beast::error_code e, const tcp::endpoint&) { ec = e; });
    c.ioc.restart();
    c.ioc.run();
    if (ec) {
      *error = fmt::format("cannot connect to {}:{}: {}", url.host, url.port, ec.message());
      return false;
    }
    c.stream.socket().set_option(tcp::no_delay(true), ec);
    c.open = true;
    ++connections;
    return true;
  }

  // One exchange on `c`; on a connection error the connection is closed.
  Answer Exchange(Connection& c, http::verb verb, const std::string& target,
                  const std::string& body) {
    Answer answer;
    http::request<http::string_body> req{verb, target, 11};
    req.set(http::field::host, url.host);
    req.set(http::field::user_agent, "rl-reward-client");
    if (!options.auth_token.empty()) req.set(http::field::authorization, "Bearer " + options.auth_token);
    if (verb == http::verb::post) req.set(http::field::content_type, "application/json");
    req.keep_alive(true);
    req.body() = body;
    req.prepare_payload();
    http::response_parser<http::string_body> parser;
    parser.body_limit(boost::none);
    beast::error_code ec;
    c.stream.expires_after(ToChrono<std::chrono::milliseconds>(options.request_timeout_s));
    http::async_write(c.stream, req, [&](beast::error_code e, size_t) {
      ec = e;
      if (!e) http::async_read(c.stream, c.buffer, parser, [&](beast::error_code e2, size_t) { ec = e2; });
    });
    c.ioc.restart();
    c.ioc.run();
    if (ec) {
      c.open = false;
      answer.error = ec == beast::error::timeout
                         ? fmt::format("no answer within request_timeout_s ({} s)", options.request_timeout_s)
                         : ec.message();
      return answer;
    }
    auto res = parser.release();
    answer.status = static_cast<int>(res.result_int());
    answer.body = std::move(res.body());
    if (const auto it = res.find(http::field::retry_after); it != res.end()) {
      answer.retry_after_s = std::atof(std::string(it->value()).c_str());
    }
    if (!res.keep_alive()) c.open = false;
    return answer;
  }

  // One attempt: a pooled connection, reconnecting once when a reused one turns out stale.
  Answer Attempt(http::verb verb, const std::string& target, const std::string& body) {
    std::unique_ptr<Connection> c = Acquire();
    Answer answer;
    const bool reused = c->open;
    ++attempts;
    if (!c->open && !Connect(*c, &answer.error)) return answer;
    answer = Exchange(*c, verb, target, body);
    if (answer.status == 0 && reused) {
      ++reconnects;
      if (!Connect(*c, &answer.error)) return answer;
      answer = Exchange(*c, verb, target, body);
    }
    if (c->open) Release(std::move(c));
    return answer;
  }

  // Attempts with exponential backoff; returns the 2xx body or throws.
  std::string Request(http::verb verb, const std::string& path, const std::string& body) {
    const std::string target = url.base_path + path;
    std::mt19937_64 rng(std::random_device{}());
    const auto start = std::chrono::steady_clock::now();
    Answer answer;
    int attempt = 0;
    ++requests;
    while (true) {
      ++attempt;
      answer = Attempt(verb, target, body);
      if (answer.status >= 200 && answer.status < 300) return std::move(answer.body);
      if (!Retryable(answer.status) || attempt >= options.max_attempts) break;
      const double backoff = std::min(
          options.max_backoff_s,
          options.initial_backoff_s * std::pow(options.backoff_multiplier, attempt - 1));
      // Equal jitter: half fixed, half random, so that many clients do not retry in step.
      double delay = backoff / 2 + std::uniform_real_distribution<double>(0, backoff / 2)(rng);
      delay = std::max(delay, answer.retry_after_s);
      std::this_thread::sleep_for(ToChrono<std::chrono::microseconds>(delay));
    }
    const double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    throw RewardClientError(
        fmt::format("reward server {}: {} {} failed after {} attempt{} in {:.1f} s: {}; no "
                    "rewards were produced", options.url, http::to_string(verb), target, attempt,
                    attempt == 1 ? "" : "s", elapsed, ServerMessage(answer)),
        answer.status);
  }
};

RewardClient::RewardClient(ClientOptions options) : impl_(std::make_unique<Impl>()) {
  if (options.max_attempts < 1) throw RewardClientError("reward client: max_attempts must be at least 1", 0);
  if (options.max_items_per_request < 1) {
    throw RewardClientError("reward client: max_items_per_request must be at least 1", 0);
  }
  impl_->url = ParseUrl(options.url);
  impl_->options = std::move(options);
}

RewardClient::~RewardClient() = default;

const ClientOptions& RewardClient::options() const { return impl_->options; }

ClientStats RewardClient::stats() const {
  return {impl_->requests.load(), impl_->attempts.load(), impl_->connections.load(), impl_->reconnects.load()};
}

std::vector<rewards::RewardResult> RewardClient::Score(std::span<const rewards::Sample> samples) {
  std::vector<rewards::RewardResult> results;
  results.reserve(samples.size());
  const size_t step = impl_->options.max_items_per_request;
  for (size_t begin = 0; begin < samples.size(); begin += step) {
    const auto chunk = samples.subspan(begin, std::min(step, samples.size() - begin));
    json body = {{"items", json::array()}};
    for (const rewards::Sample& s : chunk) body["items"].push_back(SampleJson(s));
    if (!impl_->options.reward.empty()) body["reward"] = impl_->options.reward;
    const std::string text =
        impl_->Request(http::verb::post, "/v1/score", body.dump(-1, ' ', false, json::error_handler_t::replace));
    const ordered_json answer = ordered_json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (!answer.is_object() || !answer.contains("results") || !answer["results"].is_array() ||
        answer["results"].size() != chunk.size()) {
      throw RewardClientError(
          fmt::format("reward server {}: /v1/score answered something other than {} results: {}",
                      impl_->options.url, chunk.size(), text.substr(0, 200)),
          200);
    }
    for (const ordered_json& r : answer["results"]) {
      std::string error;
      std::optional<rewards::RewardResult> result = rewards::RewardResultFromJson(r, &error);
      if (!result) {
        throw RewardClientError(fmt::format("reward server {}: /v1/score answered a malformed result "
                                            "({}): {}", impl_->options.url, error, r.dump().substr(0, 200)),
                                200);
      }
      results.push_back(std::move(*result));
    }
  }
  return results;
}

json RewardClient::Health() {
  const std::string text = impl_->Request(http::verb::get, "/health", "");
  json answer = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (answer.is_discarded()) {
    throw RewardClientError(fmt::format("reward server {}: /health is not JSON", impl_->options.url), 200);
  }
  return answer;
}

}  // namespace rl::rewards::server
