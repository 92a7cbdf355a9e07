// Shared by the boundedness tests and the benchmarks: builders of long inputs, and the
// calling thread's CPU clock that checks are measured with.
#pragma once

#include <ctime>
#include <string>
#include <string_view>

namespace rl::rewards::math::testing {

// `s` n times.
inline std::string Repeat(std::string_view s, size_t n) {
  std::string out;
  out.reserve(s.size() * n);
  for (size_t k = 0; k < n; ++k) out += s;
  return out;
}

// piece(0) sep piece(1) sep ... piece(n - 1).
template <typename Piece>
std::string Join(size_t n, std::string_view sep, Piece piece) {
  std::string out;
  for (size_t k = 0; k < n; ++k) {
    if (k > 0) out += sep;
    out += piece(k);
  }
  return out;
}

inline std::string Boxed(const std::string& s) { return "\\boxed{" + s + "}"; }

// CPU time of the calling thread: what the verifier's time backstop counts. Wall time on a
// shared machine mostly measures the scheduler.
inline double ThreadCpuMillis() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

}  // namespace rl::rewards::math::testing
