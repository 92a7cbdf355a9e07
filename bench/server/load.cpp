#include "bench/server/load.h"

#include <cstdlib>
#include <memory>
#include <optional>
#include <sstream>
#include <vector>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include "rewards/server/server_config.h"

namespace rl::bench {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;
using json = nlohmann::json;

struct Problem {
  std::string question;
  std::string gold;
  std::string right;  // a correct answer as a model might write it
  std::string wrong;
};

const std::vector<Problem>& Problems() {
  static const std::vector<Problem> problems = {
      {"What is 3/4 + 1/8?", "\\frac{7}{8}", "\\frac{7}{8}", "\\frac{5}{8}"},
      {"A train travels 150 km in 2.5 hours. What is its average speed in km/h?", "60", "60", "65"},
      {"Compute 17 * 23.", "391", "391", "401"},
      {"What is 0.125 as a fraction in lowest terms?", "\\frac{1}{8}", "1/8", "1/6"},
      {"What is 2^{10} - 24?", "1000", "\\boxed{1000}", "\\boxed{1024}"},
      {"Simplify 12/16.", "3/4", "\\frac{3}{4}", "\\frac{4}{3}"},
      {"What is 7.5% of 240?", "18", "18", "16"},
      {"Evaluate 1 + 2 + ... + 20.", "210", "210", "200"},
  };
  return problems;
}

std::string ChatPrompt(const std::string& question) {
  return "<|im_start|>system\nYou are a helpful assistant. Think step by step inside "
         "<think></think> and give the final answer inside <answer></answer>.<|im_end|>\n"
         "<|im_start|>user\n" + question + "<|im_end|>\n<|im_start|>assistant\n";
}

std::string Completion(const Problem& p, std::mt19937& rng) {
  static const std::vector<std::string> steps = {
      "First, let me restate the problem in my own words to make sure I understand it. ",
      "I will write down the quantities that are given and what is asked. ",
      "Let me compute the intermediate value carefully, keeping exact fractions. ",
      "Now I check the arithmetic again: multiplying back gives the original number. ",
      "Another way to see this is to split the expression into two simpler parts. ",
      "Wait, I should double-check the units and whether the question asks for a fraction. ",
      "Putting the pieces together, the result follows directly. ",
  };
  std::string text = "<think>\n";
  const int n = 6 + static_cast<int>(rng() % 8);
  for (int i = 0; i < n; ++i) text += steps[rng() % steps.size()];
  const bool right = rng() % 10 < 6;
  const std::string& answer = right ? p.right : p.wrong;
  text += "So the answer is " + answer + ".\n</think>\n";
  if (rng() % 10 == 0) return text + "The answer is " + answer + ".<|im_end|>";
  return text + "<answer>\n" + answer + "\n</answer><|im_end|>";
}

// One keep-alive connection in a closed loop (see the header).
class LoadConnection : public std::enable_shared_from_this<LoadConnection> {
 public:
  LoadConnection(net::io_context& ioc, const tcp::endpoint& endpoint, size_t index, LoadPlan& plan,
                 const std::atomic<bool>& stop, std::chrono::milliseconds timeout)
      : stream_(ioc), retry_(ioc), endpoint_(endpoint), index_(index), plan_(plan), stop_(stop),
        timeout_(timeout) {}

  void SendNext() {
    if (stop_) return;
    request_ = &plan_.Next(index_);
    start_ = Clock::now();
    if (!connected_) return Connect();
    Write();
  }

 private:
  void Arm() {
    if (timeout_.count() > 0) {
      stream_.expires_after(timeout_);
    } else {
      stream_.expires_never();
    }
  }

  void Connect() {
    Arm();
    stream_.async_connect(endpoint_, [self = shared_from_this()](beast::error_code ec) {
      if (ec) return self->Fail();
      self->connected_ = true;
      beast::error_code ignored;
      self->stream_.socket().set_option(tcp::no_delay(true), ignored);
      self->Write();
    });
  }

  void Write() {
    Arm();
    net::async_write(stream_, net::buffer(request_->bytes),
                     [self = shared_from_this()](beast::error_code ec, size_t) {
                       if (ec) return self->Fail();
                       self->Read();
                     });
  }

  void Read() {
    parser_.emplace();
    parser_->body_limit(boost::none);
    http::async_read(stream_, buffer_, *parser_, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec) return self->Fail();
      self->OnAnswer();
    });
  }

  void OnAnswer() {
    const bool keep_alive = parser_->get().keep_alive();
    plan_.Record(index_, *request_, static_cast<int>(parser_->get().result_int()), Seconds());
    if (!keep_alive) Close();
    SendNext();
  }

  void Fail() {
    plan_.Record(index_, *request_, 0, Seconds());
    Close();
    retry_.expires_after(std::chrono::milliseconds(100));
    retry_.async_wait([self = shared_from_this()](beast::error_code) { self->SendNext(); });
  }

  void Close() {
    beast::error_code ignored;
    stream_.socket().close(ignored);
    buffer_.clear();
    connected_ = false;
  }

  double Seconds() const { return std::chrono::duration<double>(Clock::now() - start_).count(); }

  beast::tcp_stream stream_;
  net::steady_timer retry_;
  beast::flat_buffer buffer_;
  std::optional<http::response_parser<http::string_body>> parser_;
  tcp::endpoint endpoint_;
  size_t index_;
  LoadPlan& plan_;
  const std::atomic<bool>& stop_;
  std::chrono::milliseconds timeout_;
  const RawRequest* request_ = nullptr;
  Clock::time_point start_;
  bool connected_ = false;
};

}  // namespace

void AddTargetOptions(CLI::App& app, TargetOptions* options) {
  app.add_option("--url", options->url, "load a running server (http://address:port); default: start one in process");
  app.add_option("--reward-spec", options->spec, "in-process server: reward spec");
  app.add_option("--io-threads", options->io_threads, "in-process server: io threads");
  app.add_option("--score-threads", options->score_threads, "in-process server: scoring workers");
  app.add_option("--client-threads", options->client_threads, "load generator threads");
}

bool OpenTarget(const TargetOptions& options, Target* target, std::string* error) {
  const std::string& url = options.url;
  if (!url.empty()) {
    const size_t start = url.find("//");
    const size_t colon = url.rfind(':');
    const bool shaped = start != std::string::npos && colon != std::string::npos && colon > start;
    beast::error_code ec;
    const net::ip::address address =
        shaped ? net::ip::make_address(url.substr(start + 2, colon - start - 2), ec) : net::ip::address();
    const unsigned long port = shaped ? std::strtoul(url.c_str() + colon + 1, nullptr, 10) : 0;
    if (!shaped || ec || port == 0 || port > 65535) {
      *error = "--url: expected http://<address>:<port>, got '" + url + "'";
      return false;
    }
    target->endpoint = tcp::endpoint(address, static_cast<uint16_t>(port));
    return true;
  }
  rewards::server::ServerConfig config;
  config.port = 0;
  config.io_threads = options.io_threads;
  config.score_threads = options.score_threads;
  config.summary_interval_s = 0;
  config.rewards = {{"r1", options.spec}};
  std::shared_ptr<const rewards::server::RewardRegistry> registry = rewards::server::RewardRegistry::FromConfig(config, error);
  if (registry) target->server = rewards::server::Server::Start(config, registry, error);
  if (!target->server) return false;
  target->endpoint = tcp::endpoint(net::ip::make_address("127.0.0.1"), target->server->port());
  return true;
}

std::string GetRewardBody(int items, std::mt19937& rng) {
  json body = {{"query", json::array()}, {"prompts", json::array()}, {"labels", json::array()}};
  for (int i = 0; i < items; ++i) {
    const Problem& p = Problems()[rng() % Problems().size()];
    const std::string prompt = ChatPrompt(p.question);
    body["query"].push_back(prompt + Completion(p, rng));
    body["prompts"].push_back(prompt);
    body["labels"].push_back(p.gold);
  }
  return body.dump();
}

std::vector<rewards::Sample> RewardSamples(int count, std::mt19937& rng) {
  std::vector<rewards::Sample> samples;
  for (int i = 0; i < count; ++i) {
    const Problem& p = Problems()[rng() % Problems().size()];
    rewards::Sample sample;
    sample.prompt = ChatPrompt(p.question);
    sample.completion = Completion(p, rng);
    sample.gold = p.gold;
    samples.push_back(std::move(sample));
  }
  return samples;
}

std::string PostRequest(std::string_view target, std::string_view json_body, std::string_view host) {
  http::request<http::string_body> req{http::verb::post, target, 11};
  req.set(http::field::host, host);
  req.set(http::field::content_type, "application/json");
  req.body() = std::string(json_body);
  req.prepare_payload();
  std::ostringstream out;
  out << req;
  return out.str();
}

std::string GetRequest(std::string_view target, std::string_view host) {
  return "GET " + std::string(target) + " HTTP/1.1\r\nHost: " + std::string(host) + "\r\n\r\n";
}

void StartConnections(net::io_context& ioc, const tcp::endpoint& endpoint, int connections,
                      LoadPlan& plan, const std::atomic<bool>& stop,
                      std::chrono::milliseconds request_timeout) {
  for (int c = 0; c < connections; ++c) {
    std::make_shared<LoadConnection>(ioc, endpoint, static_cast<size_t>(c), plan, stop, request_timeout)
        ->SendNext();
  }
}

}  // namespace rl::bench
