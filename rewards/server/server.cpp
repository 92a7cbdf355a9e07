#include "rewards/server/server.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <optional>
#include <string_view>
#include <thread>
#include <unordered_map>
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
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "common/threads.h"
#include "rewards/server/handlers.h"
#include "rewards/server/request_reader.h"

namespace rl::rewards::server {
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
// Once the shutdown grace is over, how long the 503s then sent get to be written before the
// io threads stop.
constexpr auto kFinalWriteTime = std::chrono::seconds(1);

class Session;

// Live sessions, so that the end of the shutdown grace reaches every connection. Sessions
// come and go on their own strands, hence a lock; taken twice per connection, not per request.
class SessionSet {
 public:
  void Add(const std::shared_ptr<Session>& session) {
    std::lock_guard lock(mutex_);
    sessions_.emplace(session.get(), session);
  }
  void Remove(const Session* session) {
    std::lock_guard lock(mutex_);
    sessions_.erase(session);
  }
  std::vector<std::shared_ptr<Session>> Live() const {
    std::lock_guard lock(mutex_);
    std::vector<std::shared_ptr<Session>> live;
    for (const auto& [key, session] : sessions_) {
      if (auto s = session.lock()) live.push_back(std::move(s));
    }
    return live;
  }

 private:
  mutable std::mutex mutex_;
  std::unordered_map<const Session*, std::weak_ptr<Session>> sessions_;
};

// Everything a session needs, owned by Server::Impl and outliving every session.
struct ServerState {
  ServerConfig config;
  std::shared_ptr<const RewardRegistry> registry;
  ServerMetrics metrics;
  HandlerContext context{config, *registry, metrics};
  net::thread_pool* pool = nullptr;
  int score_threads = 1;
  std::atomic<bool> stopping{false};
  SessionSet sessions;

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

// An exception that escaped a handler: a bug, but one connection's, not the server's.
void ReportException(ServerMetrics& metrics, std::string_view where, std::string_view what) {
  metrics.RecordUncaughtException();
  spdlog::error("{}: uncaught exception ({}); its connection ends, the server goes on", where,
                what);
}

// A scoring job split into chunks that pool workers take in turn; the worker finishing the
// last chunk renders the answer.
struct PooledJob {
  std::unique_ptr<ScoringJob> job;
  std::atomic<size_t> next{0};
  std::atomic<int> workers_left{0};
  // Answered without its scores (the shutdown grace ended, or a worker failed): workers stop.
  std::atomic<bool> abandoned{false};
  size_t chunk = 1;

  // Checks `abandoned` before each item, not each chunk: an item may take its rules' whole
  // time budget.
  void ScoreChunks() {
    const size_t n = job->size();
    for (size_t begin = next.fetch_add(chunk); begin < n; begin = next.fetch_add(chunk)) {
      for (size_t i = begin; i < std::min(begin + chunk, n); ++i) {
        if (abandoned.load(std::memory_order_relaxed)) return;
        ScoreItems(*job, i, i + 1);
      }
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
  // A request read and never answered (its connection ended by an exception, or the server
  // stopped) must still leave the gauges that shutdown and admission read.
  ~Session() {
    LeaveInFlight();
    state_.sessions.Remove(this);
  }

  void Run() {
    state_.sessions.Add(shared_from_this());
    beast::error_code ec;
    stream_.socket().set_option(tcp::no_delay(true), ec);
    net::dispatch(stream_.get_executor(),
                  beast::bind_front_handler(&Session::DoRead, shared_from_this()));
  }

  // From any thread, once the shutdown grace is over: a request still being scored is
  // answered 503; any other connection is closed at once, whatever it was doing.
  void Abort() {
    net::post(stream_.get_executor(),
              beast::bind_front_handler(&Session::OnAbort, shared_from_this()));
  }
  // Closes the socket at once. Only once the io threads have stopped: nothing else touches it.
  void CloseStopped() {
    beast::error_code ec;
    stream_.socket().close(ec);
  }

 private:
  // Waits for the next request under the idle timeout; the header timeout starts with its
  // first byte, so a slow sender cannot hide behind keep-alive idleness.
  void DoRead() {
    if (state_.stopping) return DoClose();
    parser_.emplace();
    LimitParser(state_.config, *parser_);
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
    if (const auto rejection = RejectHeader(state_.config, *parser_)) return RejectUnread(*rejection);
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
    if (ec == beast::error::timeout) {
      // The stream is closed by the timeout; count the stalled request.
      state_.metrics.RecordRequest(Endpoint::kOther, 408, 0, Seconds(read_start_));
      return fail(ec, what);
    }
    if (const auto rejection = RejectReadError(state_.config, ec)) return RejectUnread(*rejection);
    fail(ec, what);
  }

  // Answers without having read the whole request, then closes: the connection's remaining
  // bytes cannot be trusted to start a new request.
  void RejectUnread(const Rejection& rejection) {
    linger_ = true;
    const bool header_read = parser_->is_header_done();
    BeginRequest(header_read ? EndpointOf(parser_->get().target()) : Endpoint::kOther,
                 header_read ? &parser_->get().base() : nullptr);
    Send(RejectionResponse(rejection));
  }

  // `header`: the request's header when it was read (for the debug line).
  void BeginRequest(Endpoint endpoint, const http::request_header<>* header) {
    request_start_ = Clock::now();
    endpoint_ = endpoint;
    items_ = 0;
    admitted_items_ = 0;
    in_flight_ = true;
    state_.metrics.requests_in_flight.fetch_add(1, std::memory_order_relaxed);
    if (header && spdlog::should_log(spdlog::level::debug)) {
      log_line_ = std::string(header->method_string()) + " " + std::string(header->target());
    }
  }

  // Once per request, answered or not.
  void LeaveInFlight() {
    if (!in_flight_) return;
    in_flight_ = false;
    state_.metrics.items_in_flight.fetch_sub(admitted_items_, std::memory_order_relaxed);
    state_.metrics.requests_in_flight.fetch_sub(1, std::memory_order_relaxed);
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
    ScoreInPool(std::move(job));
  }

  // Every job goes to the workers, a single item too: an item may take its rules' whole time
  // budget, and an io thread must stay free for /health and for reading other requests.
  void ScoreInPool(std::unique_ptr<ScoringJob> job) {
    pooled_ = std::make_shared<PooledJob>();
    const size_t n = job->size();
    pooled_->chunk = static_cast<size_t>(state_.config.chunk_items);
    pooled_->job = std::move(job);
    const size_t chunks = std::max<size_t>(1, (n + pooled_->chunk - 1) / pooled_->chunk);
    const int workers = static_cast<int>(std::min<size_t>(state_.score_threads, chunks));
    pooled_->workers_left = workers;
    for (int w = 0; w < workers; ++w) {
      net::post(*state_.pool,
                [self = shared_from_this(), pooled = pooled_] { self->Score(*pooled); });
    }
  }

  // On a pool thread. The worker finishing last renders the answer.
  void Score(PooledJob& pooled) {
    try {
      pooled.ScoreChunks();
      if (pooled.workers_left.fetch_sub(1) != 1 || pooled.abandoned) return;
      Deliver(pooled, FinishAndRecord(*pooled.job, state_));
    } catch (const std::exception& e) {
      ReportException(state_.metrics, "scoring worker", e.what());
      pooled.abandoned = true;
      Deliver(pooled, ErrorResponse(http::status::internal_server_error,
                                    fmt::format("internal error: {}", e.what()),
                                    pooled.job->http_version, /*keep_alive=*/false));
    }
  }

  // From a pool thread to the strand; dropped there when the request was answered meanwhile.
  void Deliver(const PooledJob& pooled, Response res) {
    net::post(stream_.get_executor(), [self = shared_from_this(), job = &pooled,
                                       res = std::move(res)]() mutable {
      if (self->pooled_.get() != job) return;
      self->pooled_.reset();
      self->Send(std::move(res));
    });
  }

  void OnAbort() {
    if (!pooled_) return stream_.close();
    pooled_->abandoned = true;
    const unsigned version = pooled_->job->http_version;
    pooled_.reset();
    Send(ErrorResponse(http::status::service_unavailable,
                       "shutting down: the shutdown grace ended before this request was scored",
                       version, /*keep_alive=*/false));
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
    LeaveInFlight();
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
  // Bounded: Beast parses a chunked body's trailer only once it is wholly here.
  beast::flat_buffer buffer_{kReadBufferLimitBytes};
  ServerState& state_;
  std::optional<RequestParser> parser_;
  std::optional<http::response<http::empty_body>> continue_;
  Response response_;
  Clock::time_point read_start_;
  Clock::time_point request_start_;
  Endpoint endpoint_ = Endpoint::kOther;
  int64_t items_ = 0;
  int64_t admitted_items_ = 0;
  bool in_flight_ = false;
  // The job being scored for the current request; null when none is awaited.
  std::shared_ptr<PooledJob> pooled_;
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
  bool grace_over = false;
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
  void RunIo();
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

// An exception escaping a handler unwinds run(); the handler's session goes with it (its
// socket closes) and run() is entered again, as Asio allows.
void Server::Impl::RunIo() {
  for (;;) {
    try {
      ioc.run();
      return;
    } catch (const std::exception& e) {
      ReportException(state.metrics, "io thread", e.what());
    } catch (...) {
      ReportException(state.metrics, "io thread", "not a std::exception");
    }
  }
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

// Polls until every request read is answered. When the grace is over, what is still being
// scored is answered 503 and every connection closed; the io threads stop once those answers
// are written, or kFinalWriteTime later.
void Server::Impl::Drain() {
  const int64_t in_flight = state.metrics.requests_in_flight.load();
  const Clock::time_point now = Clock::now();
  if (in_flight == 0 || now >= drain_deadline + kFinalWriteTime) {
    if (in_flight > 0) spdlog::warn("shutdown: {} requests left unanswered", in_flight);
    ioc.stop();
    return;
  }
  if (now >= drain_deadline && !grace_over) {
    grace_over = true;
    spdlog::warn("shutdown grace over with {} requests unanswered: answering 503, closing "
                 "connections", in_flight);
    for (const std::shared_ptr<Session>& session : state.sessions.Live()) session->Abort();
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
  const int score_threads = common::ThreadCount(config.score_threads);
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
    p->threads.emplace_back([p] { p->RunIo(); });
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
  // A connection left open (an idle keep-alive one) is closed now, not when the server is
  // destroyed: its client would otherwise send its next request into a socket nobody reads.
  for (const std::shared_ptr<Session>& session : impl_->state.sessions.Live()) session->CloseStopped();
  impl_->waited = true;
  impl_->LogSummary("stopped");
}

const ServerMetrics& Server::metrics() const { return impl_->state.metrics; }
const ServerConfig& Server::config() const { return impl_->state.config; }

}  // namespace rl::rewards::server
