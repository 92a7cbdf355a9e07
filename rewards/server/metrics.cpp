#include "rewards/server/metrics.h"

#include <fmt/format.h>

namespace rl::rewards::server {
namespace {

constexpr auto kRelaxed = std::memory_order_relaxed;

int EndpointIndex(Endpoint endpoint) { return static_cast<int>(endpoint); }

}  // namespace

std::string_view EndpointLabel(Endpoint endpoint) {
  switch (endpoint) {
    case Endpoint::kGetReward: return "/get_reward";
    case Endpoint::kScore: return "/v1/score";
    case Endpoint::kHealth: return "/health";
    case Endpoint::kMetrics: return "/metrics";
    case Endpoint::kOther: return "other";
  }
  return "other";
}

int ServerMetrics::CodeIndex(int code) {
  for (int i = 0; i + 1 < kCodeCount; ++i) {
    if (kCodes[i] == code) return i;
  }
  return kCodeCount - 1;
}

void ServerMetrics::RecordRequest(Endpoint endpoint, int code, int64_t items, double seconds) {
  const int e = EndpointIndex(endpoint);
  const int c = CodeIndex(code);
  requests_[e][c].fetch_add(1, kRelaxed);
  if (items > 0) items_[e][c].fetch_add(items, kRelaxed);
  int bucket = 0;
  while (bucket < kBucketCount && seconds > kBuckets[bucket]) ++bucket;
  latency_[e][bucket].fetch_add(1, kRelaxed);
  latency_sum_us_[e].fetch_add(static_cast<int64_t>(seconds * 1e6), kRelaxed);
}

void ServerMetrics::RecordResult(const rewards::RewardResult& result) {
  // Bounds checked: a verdict or status added to the enums later is not counted, not a crash.
  if (result.answer_check) {
    const int v = static_cast<int>(result.answer_check->verdict);
    if (v >= 0 && v < kVerdictCount) verdicts_[v].fetch_add(1, kRelaxed);
  }
  const int s = static_cast<int>(result.status);
  if (s >= 0 && s < kStatusCount) statuses_[s].fetch_add(1, kRelaxed);
}

void ServerMetrics::RecordUncaughtException() { uncaught_exceptions_.fetch_add(1, kRelaxed); }

int64_t ServerMetrics::uncaught_exceptions() const { return uncaught_exceptions_.load(kRelaxed); }

int64_t ServerMetrics::requests_total() const {
  int64_t total = 0;
  for (const auto& row : requests_) {
    for (const auto& cell : row) total += cell.load(kRelaxed);
  }
  return total;
}

int64_t ServerMetrics::items_total() const {
  int64_t total = 0;
  for (const auto& row : items_) {
    for (const auto& cell : row) total += cell.load(kRelaxed);
  }
  return total;
}

int64_t ServerMetrics::requests_with_code(int code) const {
  int64_t total = 0;
  for (const auto& row : requests_) total += row[CodeIndex(code)].load(kRelaxed);
  return total;
}

std::string ServerMetrics::RenderPrometheus() const {
  std::string out;
  auto code_label = [](int c) {
    return kCodes[c] == 0 ? std::string("other") : std::to_string(kCodes[c]);
  };
  auto counter_by_endpoint_code = [&](std::string_view name, std::string_view help,
                                      const auto& table) {
    out += fmt::format("# HELP rl_server_{} {}\n# TYPE rl_server_{} counter\n", name, help, name);
    for (int e = 0; e < kEndpointCount; ++e) {
      for (int c = 0; c < kCodeCount; ++c) {
        const int64_t v = table[e][c].load(kRelaxed);
        if (v == 0) continue;
        out += fmt::format("rl_server_{}{{endpoint=\"{}\",code=\"{}\"}} {}\n", name,
                           EndpointLabel(static_cast<Endpoint>(e)), code_label(c), v);
      }
    }
  };
  counter_by_endpoint_code("requests_total", "HTTP requests answered, by endpoint and status code.",
                           requests_);
  counter_by_endpoint_code("items_total", "Items carried by answered requests.", items_);

  out +=
      "# HELP rl_server_request_duration_seconds Time from request read to response written.\n"
      "# TYPE rl_server_request_duration_seconds histogram\n";
  for (int e = 0; e < kEndpointCount; ++e) {
    const std::string_view label = EndpointLabel(static_cast<Endpoint>(e));
    int64_t cumulative = 0;
    for (int b = 0; b <= kBucketCount; ++b) cumulative += latency_[e][b].load(kRelaxed);
    if (cumulative == 0) continue;
    cumulative = 0;
    for (int b = 0; b <= kBucketCount; ++b) {
      cumulative += latency_[e][b].load(kRelaxed);
      const std::string le = b < kBucketCount ? fmt::format("{}", kBuckets[b]) : "+Inf";
      out += fmt::format("rl_server_request_duration_seconds_bucket{{endpoint=\"{}\",le=\"{}\"}} {}\n",
                         label, le, cumulative);
    }
    out += fmt::format("rl_server_request_duration_seconds_sum{{endpoint=\"{}\"}} {}\n", label,
                       static_cast<double>(latency_sum_us_[e].load(kRelaxed)) / 1e6);
    out += fmt::format("rl_server_request_duration_seconds_count{{endpoint=\"{}\"}} {}\n", label,
                       cumulative);
  }

  out +=
      "# HELP rl_server_verdicts_total Answer-check verdicts of scored items.\n"
      "# TYPE rl_server_verdicts_total counter\n";
  for (int v = 0; v < kVerdictCount; ++v) {
    out += fmt::format("rl_server_verdicts_total{{verdict=\"{}\"}} {}\n",
                       math::ToString(static_cast<math::Verdict>(v)), verdicts_[v].load(kRelaxed));
  }
  out +=
      "# HELP rl_server_score_status_total Scored items by status (ok, or why unscorable).\n"
      "# TYPE rl_server_score_status_total counter\n";
  for (int s = 0; s < kStatusCount; ++s) {
    out += fmt::format("rl_server_score_status_total{{status=\"{}\"}} {}\n",
                       rewards::ToString(static_cast<rewards::ScoreStatus>(s)),
                       statuses_[s].load(kRelaxed));
  }
  out += fmt::format(
      "# HELP rl_server_uncaught_exceptions_total Exceptions that escaped a connection or a "
      "scoring task (bugs; the connection was answered 500 or closed).\n"
      "# TYPE rl_server_uncaught_exceptions_total counter\nrl_server_uncaught_exceptions_total {}\n",
      uncaught_exceptions_.load(kRelaxed));
  out += fmt::format(
      "# HELP rl_server_items_in_flight Items admitted for scoring and not yet answered.\n"
      "# TYPE rl_server_items_in_flight gauge\nrl_server_items_in_flight {}\n"
      "# HELP rl_server_requests_in_flight Requests read and not yet answered.\n"
      "# TYPE rl_server_requests_in_flight gauge\nrl_server_requests_in_flight {}\n",
      items_in_flight.load(kRelaxed), requests_in_flight.load(kRelaxed));
  return out;
}

}  // namespace rl::rewards::server
