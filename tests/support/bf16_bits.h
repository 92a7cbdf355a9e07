// bfloat16 values as the 16-bit patterns the CPU kernels take (rl/model/bf16_gemm.h,
// rl/model/bf16_fused.h), for tests that need no LibTorch.
#pragma once

#include <cstdint>
#include <cstring>

namespace rl::testing {

// Truncates: enough to make test inputs (the kernels' own rounding is what tests check).
inline uint16_t ToBf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return static_cast<uint16_t>(u >> 16);
}

inline double ToDouble(uint16_t b) {
  const uint32_t u = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

}  // namespace rl::testing
