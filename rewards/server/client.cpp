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
using Clock = std::chrono::steady_clock;

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


// One `rl serve`: where it is, its idle keep-alive connections, and whether it is in the
// rotation.
struct Server {
  std::string text;  // the URL as configured, for messages
  ParsedUrl url;
  std::mutex mutex;  // guards idle
  std::vector<std::unique_ptr<Connection>> idle;
  std::atomic<int> outstanding{0};             // this client's requests in flight there
  std::atomic<Clock::rep> down_until{0};       // steady_clock ticks; in the past: up
  std::atomic<int64_t> answered{0};

  bool Up(Clock::time_point now) const { return down_until.load() <= now.time_since_epoch().count(); }
};

// Outstanding requests of one server while an attempt runs there.
class InFlight {
 public:
  explicit InFlight(Server& server) : server_(server) { ++server_.outstanding; }
  ~InFlight() { --server_.outstanding; }
  InFlight(const InFlight&) = delete;
  InFlight& operator=(const InFlight&) = delete;

 private:
  Server& server_;
};

// What one request has seen so far, server by server.
struct RequestState {
  std::vector<int> tries;            // attempts per server
  std::vector<std::string> errors;   // the last error per server ("" where none)
  int attempts = 0, waits = 0;
  Answer last;
};

}  // namespace

struct RewardClient::Impl {
  ClientOptions options;
  std::vector<std::unique_ptr<Server>> servers;
  std::atomic<uint64_t> rotation{0};  // where the search for the least loaded server starts
  std::atomic<int64_t> requests{0}, attempts{0}, connections{0}, reconnects{0}, marked_down{0};

  std::unique_ptr<Connection> Acquire(Server& server) {
    std::lock_guard<std::mutex> lock(server.mutex);
    if (server.idle.empty()) return std::make_unique<Connection>();
    auto c = std::move(server.idle.back());
    server.idle.pop_back();
    return c;
  }

  void Release(Server& server, std::unique_ptr<Connection> c) {
    std::lock_guard<std::mutex> lock(server.mutex);
    server.idle.push_back(std::move(c));
  }

  bool Connect(const ParsedUrl& url, Connection& c, std::string* error) {
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
  Answer Exchange(const ParsedUrl& url, Connection& c, http::verb verb, const std::string& target,
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

  // One attempt at `server`: a pooled connection, reconnecting once when a reused one turns
  // out stale.
  Answer Attempt(Server& server, http::verb verb, const std::string& path, const std::string& body) {
    InFlight in_flight(server);
    const std::string target = server.url.base_path + path;
    std::unique_ptr<Connection> c = Acquire(server);
    Answer answer;
    const bool reused = c->open;
    ++attempts;
    if (!c->open && !Connect(server.url, *c, &answer.error)) return answer;
    answer = Exchange(server.url, *c, verb, target, body);
    if (answer.status == 0 && reused) {
      ++reconnects;
      if (!Connect(server.url, *c, &answer.error)) return answer;
      answer = Exchange(server.url, *c, verb, target, body);
    }
    if (c->open) Release(server, std::move(c));
    return answer;
  }

  // The server for a request's next attempt, among those it has tried fewer than max_attempts
  // times: the one with the fewest requests in flight among those up (ties: the first from a
  // rotating start), else the one that comes back up first. -1: every server had its attempts.
  int Pick(const RequestState& state, bool* up) {
    const size_t n = servers.size();
    const size_t start = rotation++ % n;
    const auto now = Clock::now();
    int best = -1, first_back = -1;
    for (size_t i = 0; i < n; ++i) {
      const size_t s = (start + i) % n;
      if (state.tries[s] >= options.max_attempts) continue;
      const Server& server = *servers[s];
      if (server.Up(now)) {
        if (best < 0 || server.outstanding < servers[best]->outstanding) best = static_cast<int>(s);
      } else if (first_back < 0 || server.down_until < servers[first_back]->down_until) {
        first_back = static_cast<int>(s);
      }
    }
    *up = best >= 0;
    return best >= 0 ? best : first_back;
  }

  void MarkDown(Server& server, double seconds) {
    server.down_until = (Clock::now() + ToChrono<Clock::duration>(seconds)).time_since_epoch().count();
    ++marked_down;
  }

  // Equal jitter: half fixed, half random, so that many clients do not retry in step; never
  // sooner than the last Retry-After.
  void Wait(RequestState& state, std::mt19937_64& rng) {
    const double backoff = std::min(
        options.max_backoff_s, options.initial_backoff_s * std::pow(options.backoff_multiplier, state.waits++));
    const double delay = backoff / 2 + std::uniform_real_distribution<double>(0, backoff / 2)(rng);
    std::this_thread::sleep_for(ToChrono<std::chrono::microseconds>(std::max(delay, state.last.retry_after_s)));
  }

  // Attempts over the servers (see the header); returns a 2xx body and the server that sent it,
  // or throws.
  std::pair<std::string, const Server*> Request(http::verb verb, const std::string& path,
                                                const std::string& body) {
    std::mt19937_64 rng(std::random_device{}());
    const auto start = Clock::now();
    RequestState state;
    state.tries.assign(servers.size(), 0);
    state.errors.assign(servers.size(), "");
    ++requests;
    bool up = true;
    for (int s = Pick(state, &up); s >= 0; s = Pick(state, &up)) {
      if (!up && state.attempts > 0) Wait(state, rng);
      Server& server = *servers[static_cast<size_t>(s)];
      state.last = Attempt(server, verb, path, body);
      ++state.tries[static_cast<size_t>(s)];
      ++state.attempts;
      if (state.last.status >= 200 && state.last.status < 300) {
        server.down_until = 0;
        ++server.answered;
        return {std::move(state.last.body), &server};
      }
      state.errors[static_cast<size_t>(s)] = ServerMessage(state.last);
      if (!Retryable(state.last.status)) throw Failure(verb, path, state, start, &server);
      MarkDown(server, std::max(options.down_s, state.last.retry_after_s));
    }
    throw Failure(verb, path, state, start, nullptr);
  }

  // "reward server URL: POST /v1/score failed after 3 attempts in 1.2 s: cannot connect ...;
  // no rewards were produced", with every server's last error when several were tried.
  RewardClientError Failure(http::verb verb, const std::string& path, const RequestState& state,
                            Clock::time_point start, const Server* rejecting) const {
    const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    const std::string what = fmt::format("{} {} failed after {} attempt{} in {:.1f} s", http::to_string(verb),
                                         path, state.attempts, state.attempts == 1 ? "" : "s", elapsed);
    std::string servers_text, errors;
    if (rejecting != nullptr || servers.size() == 1) {
      const Server& server = rejecting != nullptr ? *rejecting : *servers.front();
      servers_text = "reward server " + server.text;
      errors = ServerMessage(state.last);
    } else {
      for (size_t s = 0; s < servers.size(); ++s) {
        servers_text += (s == 0 ? "reward servers " : ", ") + servers[s]->text;
        errors += (s == 0 ? "none answered (" : "; ") + servers[s]->text + ": " + state.errors[s];
      }
      errors += ")";
    }
    return RewardClientError(fmt::format("{}: {}: {}; no rewards were produced", servers_text, what, errors),
                             state.last.status);
  }
};

RewardClient::RewardClient(ClientOptions options) : impl_(std::make_unique<Impl>()) {
  if (options.max_attempts < 1) throw RewardClientError("reward client: max_attempts must be at least 1", 0);
  if (options.max_items_per_request < 1) {
    throw RewardClientError("reward client: max_items_per_request must be at least 1", 0);
  }
  if (options.urls.empty()) throw RewardClientError("reward client: no server url given", 0);
  for (const std::string& url : options.urls) {
    if (std::count(options.urls.begin(), options.urls.end(), url) > 1) {
      throw RewardClientError(fmt::format("reward client: url '{}' is given twice", url), 0);
    }
    auto server = std::make_unique<Server>();
    server->text = url;
    server->url = ParseUrl(url);
    impl_->servers.push_back(std::move(server));
  }
  impl_->options = std::move(options);
}

RewardClient::~RewardClient() = default;

const ClientOptions& RewardClient::options() const { return impl_->options; }

ClientStats RewardClient::stats() const {
  ClientStats stats{impl_->requests.load(), impl_->attempts.load(), impl_->connections.load(),
                    impl_->reconnects.load(), impl_->marked_down.load(), {}};
  for (const auto& server : impl_->servers) stats.answered.push_back(server->answered.load());
  return stats;
}

namespace {

// The results of a /v1/score answer for `count` items from the server at `url`, appended to
// *results; throws when the answer is not `count` results in the wire form.
void ReadResults(const std::string& text, size_t count, const std::string& url,
                 std::vector<rewards::RewardResult>* results) {
  const ordered_json answer = ordered_json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!answer.is_object() || !answer.contains("results") || !answer["results"].is_array() ||
      answer["results"].size() != count) {
    throw RewardClientError(fmt::format("reward server {}: /v1/score answered something other than {} "
                                        "results: {}", url, count, text.substr(0, 200)),
                            200);
  }
  for (const ordered_json& r : answer["results"]) {
    std::string error;
    std::optional<rewards::RewardResult> result = rewards::RewardResultFromJson(r, &error);
    if (!result) {
      throw RewardClientError(fmt::format("reward server {}: /v1/score answered a malformed result ({}): {}",
                                          url, error, r.dump().substr(0, 200)),
                              200);
    }
    results->push_back(std::move(*result));
  }
}

}  // namespace

std::vector<rewards::RewardResult> RewardClient::Score(std::span<const rewards::Sample> samples) {
  std::vector<rewards::RewardResult> results;
  results.reserve(samples.size());
  const size_t step = impl_->options.max_items_per_request;
  for (size_t begin = 0; begin < samples.size(); begin += step) {
    const auto chunk = samples.subspan(begin, std::min(step, samples.size() - begin));
    json body = {{"items", json::array()}};
    for (const rewards::Sample& s : chunk) body["items"].push_back(SampleJson(s));
    if (!impl_->options.reward.empty()) body["reward"] = impl_->options.reward;
    const auto [text, server] =
        impl_->Request(http::verb::post, "/v1/score", body.dump(-1, ' ', false, json::error_handler_t::replace));
    ReadResults(text, chunk.size(), server->text, &results);
  }
  return results;
}

json RewardClient::Health() {
  const auto [text, server] = impl_->Request(http::verb::get, "/health", "");
  json answer = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (answer.is_discarded()) {
    throw RewardClientError(fmt::format("reward server {}: /health is not JSON", server->text), 200);
  }
  return answer;
}

}  // namespace rl::rewards::server
