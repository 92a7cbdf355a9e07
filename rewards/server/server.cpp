#include "rewards/server/server.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <optional>
#include <thread>
#include <vector>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <spdlog/spdlog.h>

#include "rewards/server/handlers.h"

namespace rl::server {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;
// Sockets bound to a concrete strand type rather than the type-erased any_io_executor:
// every completion then skips the erasure's dispatch and reference counting.
using Strand = net::strand<net::io_context::executor_type>;
using Socket = tcp::socket::rebind_executor<Strand>::other;
using Stream = beast::basic_stream<tcp, Strand>;

constexpr size_t kFirstReadBytes = 16 * 1024;
constexpr uint32_t kHeaderLimitBytes = 64 * 1024;

// Everything a session needs, owned by Server::Impl and outliving every session.
struct ServerState {
  ServerConfig config;
  std::shared_ptr<const RewardRegistry> registry;
  ServerMetrics metrics;
  HandlerContext context{config, *registry, metrics};
  net::thread_pool* pool = nullptr;
  int score_threads = 1;
  std::atomic<bool> stopping{false};

  ServerState(ServerConfig c, std::shared_ptr<const RewardRegistry> r)
      : config(std::move(c)), registry(std::move(r)) {}
};

// The one place errors of a connection are reported. Clients going away are normal.
void fail(beast::error_code ec, const char* what) {
  if (ec == net::error::operation_aborted || ec == http::error::end_of_stream ||
      ec == net::error::eof || ec == net::error::connection_reset ||
      ec == net::error::broken_pipe || ec == beast::error::timeout) {
    spdlog::debug("connection: {}: {}", what, ec.message());
    return;
  }
  spdlog::warn("connection: {}: {}", what, ec.message());
}

// A scoring job split into chunks that pool workers take in turn; the worker finishing the
// last chunk renders the answer.
struct PooledJob {
  std::unique_ptr<ScoringJob> job;
  std::atomic<size_t> next{0};
  std::atomic<int> workers_left{0};
  size_t chunk = 1;

  void ScoreChunks() {
    const size_t n = job->size();
    for (size_t begin = next.fetch_add(chunk); begin < n; begin = next.fetch_add(chunk)) {
      ScoreItems(*job, begin, std::min(begin + chunk, n));
    }
  }
};

Response FinishAndRecord(const ScoringJob& job, ServerState& state) {
  for (size_t i = 0; i < job.size(); ++i) {
    if (!job.unlocated[i]) state.metrics.RecordResult(job.results[i]);
  }
  return FinishJob(job, state.context);
}

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(Socket&& socket, ServerState& state) : stream_(std::move(socket)), state_(state) {}

  void Run() {
    beast::error_code ec;
    stream_.socket().set_option(tcp::no_delay(true), ec);
    net::dispatch(stream_.get_executor(),
                  beast::bind_front_handler(&Session::DoRead, shared_from_this()));
  }

 private:
  // Waits for the next request under the idle timeout; the header timeout starts with its
  // first byte, so a slow sender cannot hide behind keep-alive idleness.
  void DoRead() {
    if (state_.stopping) return DoClose();
    parser_.emplace();
    parser_->header_limit(kHeaderLimitBytes);
    parser_->body_limit(static_cast<uint64_t>(state_.config.max_body_bytes));
    if (buffer_.size() > 0) return DoReadHeader();
    stream_.expires_after(std::chrono::milliseconds(state_.config.idle_timeout_ms));
    stream_.async_read_some(buffer_.prepare(kFirstReadBytes),
                            beast::bind_front_handler(&Session::OnFirstBytes, shared_from_this()));
  }

  void OnFirstBytes(beast::error_code ec, size_t bytes) {
    if (ec) return fail(ec, "idle");
    buffer_.commit(bytes);
    DoReadHeader();
  }

  void DoReadHeader() {
    read_start_ = Clock::now();
    stream_.expires_after(std::chrono::milliseconds(state_.config.header_timeout_ms));
    http::async_read_header(stream_, buffer_, *parser_,
                            beast::bind_front_handler(&Session::OnHeader, shared_from_this()));
  }

  void OnHeader(beast::error_code ec, size_t) {
    if (ec) return OnReadError(ec, "read header");
    const auto length = parser_->content_length();
    if (length && *length > static_cast<uint64_t>(state_.config.max_body_bytes)) {
      return RejectUnread(http::status::payload_too_large, BodyTooLargeMessage());
    }
    if (parser_->get()[http::field::expect] == "100-continue") {
      continue_.emplace(http::status::continue_, parser_->get().version());
      return http::async_write(stream_, *continue_,
                               beast::bind_front_handler(&Session::OnContinue, shared_from_this()));
    }
    DoReadBody();
  }

  void OnContinue(beast::error_code ec, size_t) {
    continue_.reset();
    if (ec) return fail(ec, "write 100-continue");
    DoReadBody();
  }

  void DoReadBody() {
    stream_.expires_after(std::chrono::milliseconds(state_.config.body_timeout_ms));
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&Session::OnRead, shared_from_this()));
  }

  void OnReadError(beast::error_code ec, const char* what) {
    if (ec == http::error::body_limit) {
      return RejectUnread(http::status::payload_too_large, BodyTooLargeMessage());
    }
    if (ec == beast::error::timeout) {
      // The stream is closed by the timeout; count the stalled request.
      state_.metrics.RecordRequest(Endpoint::kOther, 408, 0, Seconds(read_start_));
      return fail(ec, what);
    }
    if (ec.category() == http::make_error_code(http::error::body_limit).category() &&
        ec != http::error::end_of_stream && ec != http::error::partial_message) {
      return RejectUnread(http::status::bad_request,
                          std::string("malformed HTTP request: ") + ec.message());
    }
    fail(ec, what);
  }

  std::string BodyTooLargeMessage() const {
    return "body: larger than max_body_bytes (" + std::to_string(state_.config.max_body_bytes) +
           " bytes)";
  }

  // Answers without having read the whole request, then closes: the connection's remaining
  // bytes cannot be trusted to start a new request.
  void RejectUnread(http::status status, std::string_view message) {
    linger_ = true;
    const bool header_read = parser_->is_header_done();
    BeginRequest(header_read ? EndpointOf(parser_->get().target()) : Endpoint::kOther,
                 header_read ? &parser_->get().base() : nullptr);
    Send(ErrorResponse(status, message, 11, /*keep_alive=*/false));
  }

  // `header`: the request's header when it was read (for the debug line).
  void BeginRequest(Endpoint endpoint, const http::request_header<>* header) {
    request_start_ = Clock::now();
    endpoint_ = endpoint;
    items_ = 0;
    admitted_items_ = 0;
    state_.metrics.requests_in_flight.fetch_add(1, std::memory_order_relaxed);
    if (header && spdlog::should_log(spdlog::level::debug)) {
      log_line_ = std::string(header->method_string()) + " " + std::string(header->target());
    }
  }

  void OnRead(beast::error_code ec, size_t) {
    if (ec) return OnReadError(ec, "read");
    stream_.expires_never();
    Request request = parser_->release();
    BeginRequest(EndpointOf(request.target()), &request.base());
    Routed routed = Route(request, state_.context);
    if (routed.response) return Send(std::move(*routed.response));
    Admit(std::move(routed.job));
  }

  // Backpressure: admit the job's items or answer 503.
  void Admit(std::unique_ptr<ScoringJob> job) {
    const int64_t n = static_cast<int64_t>(job->size());
    items_ = n;
    const int64_t before = state_.metrics.items_in_flight.fetch_add(n, std::memory_order_relaxed);
    if (n > 0 && before + n > state_.config.max_inflight_items) {
      state_.metrics.items_in_flight.fetch_sub(n, std::memory_order_relaxed);
      return Send(OverloadedResponse(state_.config, n, job->http_version, job->keep_alive));
    }
    admitted_items_ = n;
    if (n <= state_.config.inline_max_items) {
      ScoreItems(*job, 0, job->size());
      return Send(FinishAndRecord(*job, state_));
    }
    ScoreInPool(std::move(job));
  }

  void ScoreInPool(std::unique_ptr<ScoringJob> job) {
    auto pooled = std::make_shared<PooledJob>();
    const size_t n = job->size();
    pooled->chunk = static_cast<size_t>(state_.config.chunk_items);
    pooled->job = std::move(job);
    const int workers =
        static_cast<int>(std::min<size_t>(state_.score_threads, (n + pooled->chunk - 1) / pooled->chunk));
    pooled->workers_left = workers;
    for (int w = 0; w < workers; ++w) {
      net::post(*state_.pool, [self = shared_from_this(), pooled] {
        pooled->ScoreChunks();
        if (pooled->workers_left.fetch_sub(1) != 1) return;
        Response res = FinishAndRecord(*pooled->job, self->state_);
        net::post(self->stream_.get_executor(), [self, res = std::move(res)]() mutable {
          self->Send(std::move(res));
        });
      });
    }
  }

  void Send(Response res) {
    if (state_.stopping) res.keep_alive(false);
    response_ = std::move(res);
    stream_.expires_after(std::chrono::milliseconds(state_.config.body_timeout_ms));
    http::async_write(stream_, response_,
                      beast::bind_front_handler(&Session::OnWrite, shared_from_this()));
  }

  void OnWrite(beast::error_code ec, size_t) {
    const int code = static_cast<int>(response_.result_int());
    const double seconds = Seconds(request_start_);
    state_.metrics.RecordRequest(endpoint_, code, items_, seconds);
    state_.metrics.items_in_flight.fetch_sub(admitted_items_, std::memory_order_relaxed);
    state_.metrics.requests_in_flight.fetch_sub(1, std::memory_order_relaxed);
    if (!log_line_.empty()) {
      spdlog::debug("{} -> {} ({} items, {:.3f} ms)", log_line_, code, items_, seconds * 1e3);
      log_line_.clear();
    }
    if (ec) return fail(ec, "write");
    if (!response_.keep_alive()) return linger_ ? DoLingeringClose() : DoClose();
    response_ = {};
    DoRead();
  }

  void DoClose() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
  }

  // After answering a request whose body was not read, keeps reading (and discarding) for a
  // moment so that closing does not reset the connection before the client reads the answer.
  void DoLingeringClose() {
    DoClose();
    discard_.resize(64 * 1024);
    stream_.expires_after(std::chrono::seconds(1));
    DoDiscard();
  }

  void DoDiscard() {
    stream_.async_read_some(net::buffer(discard_), [self = shared_from_this()](
                                                       beast::error_code ec, size_t) {
      if (!ec) self->DoDiscard();
    });
  }

  static double Seconds(Clock::time_point since) {
    return std::chrono::duration<double>(Clock::now() - since).count();
  }

  Stream stream_;
  beast::flat_buffer buffer_;
  ServerState& state_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::optional<http::response<http::empty_body>> continue_;
  Response response_;
  Clock::time_point read_start_;
  Clock::time_point request_start_;
  Endpoint endpoint_ = Endpoint::kOther;
  int64_t items_ = 0;
  int64_t admitted_items_ = 0;
  std::string log_line_;
  bool linger_ = false;
  std::vector<char> discard_;
};

class Listener : public std::enable_shared_from_this<Listener> {
 public:
  Listener(net::io_context& ioc, tcp::acceptor& acceptor, ServerState& state)
      : ioc_(ioc), acceptor_(acceptor), state_(state), retry_timer_(acceptor.get_executor()) {}

  void Run() {
    net::dispatch(acceptor_.get_executor(),
                  beast::bind_front_handler(&Listener::DoAccept, shared_from_this()));
  }

 private:
  void DoAccept() {
    acceptor_.async_accept(net::make_strand(ioc_),
                           beast::bind_front_handler(&Listener::OnAccept, shared_from_this()));
  }

  void OnAccept(beast::error_code ec, Socket socket) {
    if (ec == net::error::operation_aborted || !acceptor_.is_open()) return;
    if (ec) {
      // E.g. out of file descriptors: wait a little instead of spinning.
      fail(ec, "accept");
      retry_timer_.expires_after(std::chrono::milliseconds(50));
      retry_timer_.async_wait([self = shared_from_this()](beast::error_code wait_ec) {
        if (!wait_ec) self->DoAccept();
      });
      return;
    }
    std::make_shared<Session>(std::move(socket), state_)->Run();
    DoAccept();
  }

  net::io_context& ioc_;
  tcp::acceptor& acceptor_;
  ServerState& state_;
  net::steady_timer retry_timer_;
};

}  // namespace

struct Server::Impl {
  // Declaration order is destruction order reversed: the pool joins before the io_context
  // (whose pending handlers hold sessions) goes, and the state outlives both.
  ServerState state;
  net::io_context ioc;
  net::thread_pool pool;
  tcp::acceptor acceptor;
  net::steady_timer summary_timer;
  net::steady_timer drain_timer;
  net::signal_set signals;
  std::vector<std::thread> threads;
  Clock::time_point started = Clock::now();
  Clock::time_point drain_deadline;
  int64_t last_requests = 0;
  int64_t last_items = 0;
  uint16_t port = 0;
  bool waited = false;

  Impl(ServerConfig config, std::shared_ptr<const RewardRegistry> registry, int score_threads)
      : state(std::move(config), std::move(registry)),
        ioc(state.config.io_threads),
        pool(static_cast<size_t>(score_threads)),
        acceptor(net::make_strand(ioc)),
        summary_timer(acceptor.get_executor()),
        drain_timer(acceptor.get_executor()),
        signals(ioc) {
    state.pool = &pool;
    state.score_threads = score_threads;
  }

  bool Listen(std::string* error);
  void ScheduleSummary();
  void LogSummary(const char* when);
  void BeginShutdown();
  void Drain();
};

bool Server::Impl::Listen(std::string* error) {
  const ServerConfig& c = state.config;
  beast::error_code ec;
  tcp::resolver resolver(ioc);
  const auto results = resolver.resolve(c.host, std::to_string(c.port),
                                        tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec || results.empty()) {
    *error = "host: cannot resolve '" + c.host + "': " + ec.message();
    return false;
  }
  const tcp::endpoint endpoint = results.begin()->endpoint();
  auto failed = [&](const char* step) {
    *error = "cannot listen on " + c.host + ":" + std::to_string(c.port) + " (" + step + "): " +
             ec.message();
    return false;
  };
  if (acceptor.open(endpoint.protocol(), ec); ec) return failed("open");
  if (acceptor.set_option(net::socket_base::reuse_address(true), ec); ec) return failed("set_option");
  if (acceptor.bind(endpoint, ec); ec) return failed("bind");
  if (acceptor.listen(net::socket_base::max_listen_connections, ec); ec) return failed("listen");
  port = acceptor.local_endpoint(ec).port();
  return true;
}

void Server::Impl::LogSummary(const char* when) {
  const int64_t requests = state.metrics.requests_total();
  const int64_t items = state.metrics.items_total();
  const double uptime = std::chrono::duration<double>(Clock::now() - started).count();
  spdlog::info("{}: {} requests (+{}), {} items (+{}), {} answered 4xx/5xx, {} items in flight, "
               "up {:.0f} s", when, requests, requests - last_requests, items, items - last_items,
               requests - state.metrics.requests_with_code(200),
               state.metrics.items_in_flight.load(), uptime);
  last_requests = requests;
  last_items = items;
}

void Server::Impl::ScheduleSummary() {
  if (state.config.summary_interval_s <= 0) return;
  summary_timer.expires_after(std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(state.config.summary_interval_s)));
  summary_timer.async_wait([this](beast::error_code ec) {
    if (ec || state.stopping) return;
    LogSummary("summary");
    ScheduleSummary();
  });
}

// Runs on the acceptor's strand: stop accepting, then wait for requests already read.
void Server::Impl::BeginShutdown() {
  spdlog::info("shutting down: no new connections; finishing {} requests in flight",
               state.metrics.requests_in_flight.load());
  beast::error_code ec;
  acceptor.close(ec);
  summary_timer.cancel();
  signals.cancel(ec);
  drain_deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                      std::chrono::duration<double>(state.config.shutdown_grace_s));
  Drain();
}

void Server::Impl::Drain() {
  const int64_t in_flight = state.metrics.requests_in_flight.load();
  if (in_flight == 0 || Clock::now() >= drain_deadline) {
    if (in_flight > 0) spdlog::warn("shutdown grace over with {} requests unanswered", in_flight);
    ioc.stop();
    return;
  }
  drain_timer.expires_after(std::chrono::milliseconds(5));
  drain_timer.async_wait([this](beast::error_code) { Drain(); });
}

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

std::unique_ptr<Server> Server::Start(ServerConfig config,
                                      std::shared_ptr<const RewardRegistry> registry,
                                      std::string* error) {
  if (!registry) {
    *error = "rewards: no reward registry";
    return nullptr;
  }
  const int score_threads = config.score_threads > 0
                                ? config.score_threads
                                : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  auto impl = std::make_unique<Impl>(std::move(config), std::move(registry), score_threads);
  if (!impl->Listen(error)) return nullptr;
  Impl* p = impl.get();
  if (p->state.config.handle_signals) {
    p->signals.add(SIGINT);
    p->signals.add(SIGTERM);
    p->signals.async_wait([p](beast::error_code ec, int signal) {
      if (ec) return;
      spdlog::info("received signal {}", signal);
      if (!p->state.stopping.exchange(true)) {
        net::post(p->acceptor.get_executor(), [p] { p->BeginShutdown(); });
      }
    });
  }
  std::make_shared<Listener>(p->ioc, p->acceptor, p->state)->Run();
  p->ScheduleSummary();
  for (int i = 0; i < p->state.config.io_threads; ++i) {
    p->threads.emplace_back([p] { p->ioc.run(); });
  }
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

Server::~Server() {
  Shutdown();
  Wait();
}

uint16_t Server::port() const { return impl_->port; }

void Server::Shutdown() {
  if (impl_->state.stopping.exchange(true)) return;
  Impl* p = impl_.get();
  net::post(p->acceptor.get_executor(), [p] { p->BeginShutdown(); });
}

void Server::Wait() {
  if (impl_->waited) return;
  for (std::thread& t : impl_->threads) t.join();
  impl_->pool.join();
  impl_->waited = true;
  impl_->LogSummary("stopped");
}

const ServerMetrics& Server::metrics() const { return impl_->state.metrics; }
const ServerConfig& Server::config() const { return impl_->state.config; }

}  // namespace rl::server
