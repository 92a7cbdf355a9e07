// The fused bf16 kernels against double-precision references. The log-softmax: log-probabilities,
// entropies and ∂loss/∂logits for vocabularies that end inside a vector, inside an unrolled
// block and exactly on one, at temperatures 1 and 0.7, with flat and peaked rows. SwiGLU: values
// and gradients over ranges with tails, and nothing written outside them.
#include <cmath>
#include <cstring>
#include <random>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "rl/model/bf16_gemm.h"
#include "rl/model/bf16_fused.h"
#include "tests/support/bf16_bits.h"

#if RL_HAVE_BF16_FUSED

namespace {

using rl::testing::ToBf16;
using rl::testing::ToDouble;

// Rows of `spread`-scaled normal logits; row 1 is peaked (one logit 30 above the rest).
struct Rows {
  int64_t N, V;
  std::vector<uint16_t> logits;
  std::vector<int64_t> targets;
  Rows(int64_t n, int64_t v, double spread, uint32_t seed) : N(n), V(v), logits(n * v), targets(n) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0.0f, static_cast<float>(spread));
    for (auto& x : logits) x = ToBf16(normal(rng));
    for (auto& t : targets) t = std::uniform_int_distribution<int64_t>(0, V - 1)(rng);
    if (N > 1) logits[V + targets[1]] = ToBf16(30.0f);
  }
};

struct Reference {
  double logprob, entropy;
  std::vector<double> gradient;
};

Reference Exact(const uint16_t* row, int64_t V, int64_t target, double scale, double g, double h) {
  double zmax = -INFINITY;
  for (int64_t j = 0; j < V; ++j) zmax = std::max(zmax, scale * ToDouble(row[j]));
  double sum = 0;
  for (int64_t j = 0; j < V; ++j) sum += std::exp(scale * ToDouble(row[j]) - zmax);
  const double lse = zmax + std::log(sum);
  Reference r;
  r.logprob = scale * ToDouble(row[target]) - lse;
  r.entropy = 0;
  for (int64_t j = 0; j < V; ++j) {
    const double log_p = scale * ToDouble(row[j]) - lse;
    r.entropy -= std::exp(log_p) * log_p;
  }
  for (int64_t j = 0; j < V; ++j) {
    const double log_p = scale * ToDouble(row[j]) - lse, p = std::exp(log_p);
    r.gradient.push_back(scale * (g * ((j == target ? 1 : 0) - p) - h * p * (log_p + r.entropy)));
  }
  return r;
}

}  // namespace

TEST_CASE("fused bf16 log-softmax matches a double-precision reference", "[model][bf16_fused]") {
  if (!rl::model::Bf16KernelSupported(rl::model::Bf16Kernel::kAvx512)) {
    WARN("this CPU has no AVX-512 F/BW with FMA: the kernels are not run");
    return;
  }
  for (const int64_t V : {1, 5, 16, 17, 64, 100, 4099}) {
    for (const double temperature : {1.0, 0.7}) {
      const float scale = static_cast<float>(1.0 / temperature);
      const Rows rows(3, V, 2.0, static_cast<uint32_t>(V * 10 + (temperature == 1.0)));
      std::vector<float> logprob(rows.N), entropy(rows.N), logprob_only(rows.N);
      rl::model::Bf16LogSoftmaxRows(rows.logits.data(), V, rows.targets.data(), scale, 0, rows.N, logprob.data(),
                                    entropy.data());
      rl::model::Bf16LogSoftmaxRows(rows.logits.data(), V, rows.targets.data(), scale, 0, rows.N,
                                    logprob_only.data(), nullptr);
      const std::vector<float> g = {0.5f, -1.25f, 2.0f}, h = {0.0f, 0.3f, -0.7f};
      std::vector<uint16_t> gradient = rows.logits;
      rl::model::Bf16LogSoftmaxGradRows(gradient.data(), V, rows.targets.data(), scale, g.data(), h.data(), 0,
                                        rows.N);
      for (int64_t r = 0; r < rows.N; ++r) {
        INFO("V " << V << ", temperature " << temperature << ", row " << r);
        const Reference exact = Exact(rows.logits.data() + r * V, V, rows.targets[r], scale, g[r], h[r]);
        CHECK(logprob[r] == Approx(exact.logprob).margin(1e-5).epsilon(1e-5));
        CHECK(logprob_only[r] == logprob[r]);
        CHECK(entropy[r] == Approx(exact.entropy).margin(1e-5).epsilon(1e-5));
        for (int64_t j = 0; j < V; ++j) {
          // One rounding to bf16 (8 bits), of a float32 value within float32's error.
          const double got = ToDouble(gradient[r * V + j]), want = exact.gradient[j];
          if (std::abs(got - want) > std::abs(want) * std::ldexp(1.0, -8) + 1e-7) {
            FAIL_CHECK("gradient[" << j << "] = " << got << ", want " << want);
            break;
          }
        }
      }
    }
  }
}

TEST_CASE("fused bf16 log-softmax writes only its rows, and null gradients count as zero",
          "[model][bf16_fused]") {
  if (!rl::model::Bf16KernelSupported(rl::model::Bf16Kernel::kAvx512)) {
    WARN("this CPU has no AVX-512 F/BW with FMA: the kernels are not run");
    return;
  }
  const Rows rows(4, 300, 1.0, 7);
  std::vector<float> logprob(rows.N, 42.0f);
  rl::model::Bf16LogSoftmaxRows(rows.logits.data(), rows.V, rows.targets.data(), 1.0f, 1, 3, logprob.data(),
                                nullptr);
  CHECK(logprob[0] == 42.0f);
  CHECK(logprob[3] == 42.0f);
  CHECK(logprob[2] < 0.0f);  // row 1 is peaked at its target: log p rounds to 0

  // Only the log-probability's gradient: the entropy's term vanishes, and the row sums to zero.
  std::vector<uint16_t> gradient = rows.logits;
  const std::vector<float> g(rows.N, 1.0f);
  rl::model::Bf16LogSoftmaxGradRows(gradient.data(), rows.V, rows.targets.data(), 1.0f, g.data(), nullptr, 1, 3);
  CHECK(std::memcmp(gradient.data(), rows.logits.data(), rows.V * sizeof(uint16_t)) == 0);
  CHECK(std::memcmp(gradient.data() + 3 * rows.V, rows.logits.data() + 3 * rows.V, rows.V * sizeof(uint16_t)) == 0);
  for (int64_t r = 1; r < 3; ++r) {
    const Reference exact = Exact(rows.logits.data() + r * rows.V, rows.V, rows.targets[r], 1.0, 1.0, 0.0);
    double sum = 0;
    for (int64_t j = 0; j < rows.V; ++j) {
      sum += ToDouble(gradient[r * rows.V + j]);
      CHECK(ToDouble(gradient[r * rows.V + j]) == Approx(exact.gradient[j]).margin(1e-7).epsilon(1.0 / 256));
    }
    CHECK(sum == Approx(0.0).margin(1e-2));
  }

  // Neither gradient: all zeros.
  gradient = rows.logits;
  rl::model::Bf16LogSoftmaxGradRows(gradient.data(), rows.V, rows.targets.data(), 1.0f, nullptr, nullptr, 0, rows.N);
  for (uint16_t bits : gradient) CHECK((bits & 0x7FFF) == 0);
}

namespace {

// x rounded to the nearest bf16 (ties to even), as a double.
double RoundBf16(double x) {
  const float f = static_cast<float>(x);
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  u = (u + ((u >> 16) & 1) + 0x7FFF) & 0xFFFF0000u;
  float r;
  std::memcpy(&r, &u, sizeof r);
  return r;
}

// The kernels round float32 values once: where float32's own error crosses a rounding boundary,
// the result is the neighbouring bf16, one step (2^-8 relative) away.
bool NearBf16(double got, double want) { return std::abs(got - want) <= std::abs(want) * std::ldexp(1.0, -8) + 1e-30; }

}  // namespace

TEST_CASE("fused bf16 SwiGLU matches a double-precision reference", "[model][bf16_fused]") {
  if (!rl::model::Bf16KernelSupported(rl::model::Bf16Kernel::kAvx512)) {
    WARN("this CPU has no AVX-512 F/BW with FMA: the kernels are not run");
    return;
  }
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  const int64_t n = 1000;
  std::vector<uint16_t> gate(n), up(n), d_out(n);
  for (auto* v : {&gate, &up, &d_out})
    for (auto& x : *v) x = ToBf16(normal(rng));
  for (const auto& [begin, end] : std::vector<std::pair<int64_t, int64_t>>{{0, 1}, {1, 16}, {16, 33}, {33, 1000}}) {
    std::vector<uint16_t> out(n, 0xFFFF), d_gate(n, 0xFFFF), d_up(n, 0xFFFF);
    rl::model::Bf16SwiGlu(gate.data(), up.data(), out.data(), begin, end);
    rl::model::Bf16SwiGluGrad(gate.data(), up.data(), d_out.data(), d_gate.data(), d_up.data(), begin, end);
    for (int64_t i = 0; i < n; ++i) {
      INFO("element " << i << " of [" << begin << ", " << end << ")");
      if (i < begin || i >= end) {
        CHECK((out[i] == 0xFFFF && d_gate[i] == 0xFFFF && d_up[i] == 0xFFFF));
        continue;
      }
      const double g = ToDouble(gate[i]), u = ToDouble(up[i]), dy = ToDouble(d_out[i]);
      const double sigmoid = 1 / (1 + std::exp(-g)), silu = g * sigmoid;
      CHECK(NearBf16(ToDouble(out[i]), RoundBf16(silu * u)));
      CHECK(NearBf16(ToDouble(d_up[i]), RoundBf16(dy * silu)));
      CHECK(NearBf16(ToDouble(d_gate[i]), RoundBf16(dy * u * sigmoid * (1 + g * (1 - sigmoid)))));
    }
  }
}

#endif  // RL_HAVE_BF16_FUSED
