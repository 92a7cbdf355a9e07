// The bf16 matrix-product kernels against a double-precision reference, at the shapes that
// exercise every partial tile and the tail of K, and their batch and split invariance: a row's
// bits must not depend on M, on the other rows, or on how [0,N) is split across threads.
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include <catch2/catch.hpp>

#include "rl/model/bf16_gemm.h"
#include "tests/support/bf16_bits.h"

namespace {

using rl::model::Bf16Kernel;

using rl::testing::ToBf16;
using rl::testing::ToDouble;

std::vector<uint16_t> Random(size_t n, std::mt19937& rng) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<uint16_t> v(n);
  for (auto& e : v) e = ToBf16(normal(rng));
  return v;
}

std::vector<Bf16Kernel> SupportedKernels() {
  std::vector<Bf16Kernel> kernels;
  for (Bf16Kernel k : {Bf16Kernel::kAvx2, Bf16Kernel::kAvx512, Bf16Kernel::kAmx})
    if (rl::model::Bf16KernelSupported(k)) kernels.push_back(k);
  return kernels;
}

struct Problem {
  int64_t M, N, K;
  std::vector<uint16_t> x, w, bias;
  Problem(int64_t m, int64_t n, int64_t k, uint32_t seed) : M(m), N(n), K(k) {
    std::mt19937 rng(seed);
    x = Random(M * K, rng);
    w = Random(N * K, rng);
    bias = Random(N, rng);
  }
  std::vector<uint16_t> Run(Bf16Kernel kernel, bool with_bias, int splits = 1) const {
    std::vector<uint16_t> y(M * N, 0xFFFF);
    for (int s = 0; s < splits; ++s) {
      rl::model::Bf16GemmColumns(kernel, x.data(), w.data(), with_bias ? bias.data() : nullptr,
                                 y.data(), M, N, K, N * s / splits, N * (s + 1) / splits);
    }
    return y;
  }
};

}  // namespace

TEST_CASE("the best kernel is supported and named", "[bf16_gemm]") {
  const Bf16Kernel best = rl::model::BestBf16Kernel();
  CHECK(rl::model::Bf16KernelSupported(best));
  INFO("best kernel: " << rl::model::Bf16KernelName(best));
  if (SupportedKernels().empty()) WARN("no bf16 kernel runs on this CPU; LibTorch is used");
}

TEST_CASE("bf16 products match a double-precision reference", "[bf16_gemm]") {
  // M and N cover full and partial tiles; K covers whole chunks of 32 and 8, and tails.
  for (Bf16Kernel kernel : SupportedKernels()) {
    for (int64_t M : {1, 2, 3, 5, 8, 67}) {
      for (int64_t N : {1, 3, 4, 7, 16}) {
        for (int64_t K : {1, 7, 8, 31, 32, 33, 96, 200}) {
          const Problem p(M, N, K, static_cast<uint32_t>(M * 10007 + N * 101 + K));
          const std::vector<uint16_t> y = p.Run(kernel, /*with_bias=*/true);
          for (int64_t m = 0; m < M; ++m) {
            for (int64_t n = 0; n < N; ++n) {
              double ref = ToDouble(p.bias[n]), scale = std::fabs(ref);
              for (int64_t k = 0; k < K; ++k) {
                const double t = ToDouble(p.x[m * K + k]) * ToDouble(p.w[n * K + k]);
                ref += t;
                scale += std::fabs(t);
              }
              INFO(rl::model::Bf16KernelName(kernel)
                   << " M=" << M << " N=" << N << " K=" << K << " m=" << m << " n=" << n);
              // One bf16 rounding of the result (2^-8 relative) plus float32 accumulation.
              REQUIRE(std::fabs(ToDouble(y[m * N + n]) - ref) <=
                      std::fabs(ref) * 0x1p-8 + scale * 1e-5 + 1e-30);
            }
          }
        }
      }
    }
  }
}

TEST_CASE("a row's result does not depend on the batch or the column split", "[bf16_gemm]") {
  for (Bf16Kernel kernel : SupportedKernels()) {
    INFO(rl::model::Bf16KernelName(kernel));
    const int64_t M = 70, N = 37, K = 133;  // partial tiles everywhere, a row block of 64 + 6
    const Problem batch(M, N, K, 7);
    const std::vector<uint16_t> all = batch.Run(kernel, true);
    CHECK(batch.Run(kernel, true, /*splits=*/3) == all);
    CHECK(batch.Run(kernel, true, /*splits=*/N) == all);
    for (int64_t m : {int64_t{0}, int64_t{5}, int64_t{63}, int64_t{64}, M - 1}) {
      Problem alone = batch;
      alone.M = 1;
      alone.x.assign(batch.x.begin() + m * K, batch.x.begin() + (m + 1) * K);
      const std::vector<uint16_t> row = alone.Run(kernel, true);
      CHECK(std::equal(row.begin(), row.end(), all.begin() + m * N));
    }
  }
}

TEST_CASE("products past one cache block of weights", "[bf16_gemm]") {
  // The AMX kernel walks weights in blocks of about 1 MiB (256 rows at K = 2,016) and pairs of
  // tiles within them: 600 rows are three blocks, the last ending in a partial pair and a
  // partial tile; 37 rows of x are two groups and a partial one. K = 2,000 takes the padded path.
  for (Bf16Kernel kernel : SupportedKernels()) {
    for (int64_t K : {2016, 2000}) {
      INFO(rl::model::Bf16KernelName(kernel) << " K=" << K);
      const Problem p(37, 600, K, static_cast<uint32_t>(K));
      const std::vector<uint16_t> y = p.Run(kernel, /*with_bias=*/true);
      for (int64_t m : {int64_t{0}, int64_t{17}, int64_t{36}}) {
        for (int64_t n : {int64_t{0}, int64_t{255}, int64_t{256}, int64_t{511}, int64_t{599}}) {
          double ref = ToDouble(p.bias[n]), scale = std::fabs(ref);
          for (int64_t k = 0; k < K; ++k) {
            const double t = ToDouble(p.x[m * K + k]) * ToDouble(p.w[n * K + k]);
            ref += t;
            scale += std::fabs(t);
          }
          INFO("m=" << m << " n=" << n);
          CHECK(std::fabs(ToDouble(y[m * p.N + n]) - ref) <= std::fabs(ref) * 0x1p-8 + scale * 1e-5 + 1e-30);
        }
      }
      CHECK(p.Run(kernel, true, /*splits=*/7) == y);
      Problem alone = p;
      alone.M = 1;
      alone.x.assign(p.x.begin() + 33 * K, p.x.begin() + 34 * K);
      const std::vector<uint16_t> row = alone.Run(kernel, true);
      CHECK(std::equal(row.begin(), row.end(), y.begin() + 33 * p.N));
    }
  }
}

TEST_CASE("without a bias, with zeros and with infinities", "[bf16_gemm]") {
  for (Bf16Kernel kernel : SupportedKernels()) {
    INFO(rl::model::Bf16KernelName(kernel));
    Problem p(2, 4, 40, 3);
    std::fill(p.x.begin(), p.x.begin() + 40, 0);  // row 0 all zero
    p.x[40] = 0x7F80;                             // row 1 starts with +inf
    const std::vector<uint16_t> y = p.Run(kernel, /*with_bias=*/false);
    for (int n = 0; n < 4; ++n) CHECK(y[n] == 0);  // exact +0, no bias added
    for (int n = 0; n < 4; ++n) CHECK(std::isinf(ToDouble(y[4 + n])));
  }
}

TEST_CASE("bad arguments are refused, not run", "[bf16_gemm]") {
  const Problem p(1, 4, 8, 1);
  std::vector<uint16_t> y(4);
  CHECK_THROWS_AS(rl::model::Bf16GemmColumns(Bf16Kernel::kNone, p.x.data(), p.w.data(), nullptr,
                                             y.data(), 1, 4, 8, 0, 4),
                  std::invalid_argument);
  for (Bf16Kernel kernel : SupportedKernels()) {
    CHECK_THROWS_AS(rl::model::Bf16GemmColumns(kernel, p.x.data(), p.w.data(), nullptr, y.data(),
                                               1, 4, 8, 2, 5),
                    std::invalid_argument);
    CHECK_THROWS_AS(rl::model::Bf16GemmColumns(kernel, p.x.data(), p.w.data(), nullptr, y.data(),
                                               1, 4, 0, 0, 4),
                    std::invalid_argument);
  }
}
