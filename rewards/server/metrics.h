// rewards/server/metrics.h: the reward server's counters, exported as Prometheus text.
//
//   rl::rewards::server::ServerMetrics metrics;
//   metrics.RecordRequest(Endpoint::kGetReward, 200, /*items=*/1, /*seconds=*/0.0004);
//   metrics.RecordResult(result);          // verdict and status counts
//   std::string text = metrics.RenderPrometheus();
//
// Series (all prefixed rl_server_):
//   requests_total{endpoint,code}            counter
//   items_total{endpoint,code}               counter: items carried by those requests
//   request_duration_seconds{endpoint}       histogram, from request read to response written
//   verdicts_total{verdict}                  counter: answer-check verdicts of scored items
//   score_status_total{status}               counter: "ok" or why an item was unscorable
//   uncaught_exceptions_total                counter: exceptions that escaped a connection's
//                                            handlers or a scoring task (each a bug; the
//                                            connection was answered 500 or closed)
//   items_in_flight, requests_in_flight      gauges
//
// Thread safety: every member function may be called concurrently; counters are relaxed
// atomics (a scrape may see a request counted before its items, never a torn value).
// Copying is disabled: the atomics are the state.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

#include "rewards/reward.h"

namespace rl::rewards::server {

enum class Endpoint { kGetReward, kScore, kHealth, kMetrics, kOther };
inline constexpr int kEndpointCount = 5;
// "/get_reward", "/v1/score", "/health", "/metrics", "other".
std::string_view EndpointLabel(Endpoint endpoint);

class ServerMetrics {
 public:
  ServerMetrics() = default;
  ServerMetrics(const ServerMetrics&) = delete;
  ServerMetrics& operator=(const ServerMetrics&) = delete;

  void RecordRequest(Endpoint endpoint, int code, int64_t items, double seconds);
  // Counts the verdict (when the reward checked an answer) and the status of one item.
  void RecordResult(const rewards::RewardResult& result);
  void RecordUncaughtException();

  // Items admitted for scoring and not yet answered (the backpressure gauge).
  std::atomic<int64_t> items_in_flight{0};
  // Requests read and not yet answered (what a graceful shutdown waits for).
  std::atomic<int64_t> requests_in_flight{0};

  int64_t requests_total() const;
  int64_t items_total() const;
  // Requests answered with `code`, over all endpoints.
  int64_t requests_with_code(int code) const;
  int64_t uncaught_exceptions() const;

  std::string RenderPrometheus() const;

 private:
  // Status codes the server answers with; anything else is counted under "other".
  static constexpr std::array<int, 13> kCodes = {200, 400, 401, 404, 405, 408, 413,
                                                 415, 422, 431, 500, 503, 0};
  static constexpr int kCodeCount = static_cast<int>(kCodes.size());
  // Upper bounds (seconds) of the latency histogram; +Inf is implicit.
  static constexpr std::array<double, 14> kBuckets = {0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                                      0.01,    0.025,  0.05,  0.1,    0.25,
                                                      0.5,     1,      2.5,   10};
  static constexpr int kBucketCount = static_cast<int>(kBuckets.size());
  static constexpr int kVerdictCount = 6;  // math::Verdict values
  static constexpr int kStatusCount =  // rewards::ScoreStatus values
      static_cast<int>(rewards::ScoreStatus::kRuleError) + 1;

  static int CodeIndex(int code);

  std::array<std::array<std::atomic<int64_t>, kCodeCount>, kEndpointCount> requests_{};
  std::array<std::array<std::atomic<int64_t>, kCodeCount>, kEndpointCount> items_{};
  std::array<std::array<std::atomic<int64_t>, kBucketCount + 1>, kEndpointCount> latency_{};
  std::array<std::atomic<int64_t>, kEndpointCount> latency_sum_us_{};
  std::array<std::atomic<int64_t>, kVerdictCount> verdicts_{};
  std::array<std::atomic<int64_t>, kStatusCount> statuses_{};
  std::atomic<int64_t> uncaught_exceptions_{0};
};

}  // namespace rl::rewards::server
