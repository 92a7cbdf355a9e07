// Compiled for AVX-512 (rl/model/CMakeLists.txt) and entered only after the caller's CPU check.
// It includes C headers only: a shared C++ header's inline function compiled here could be the
// copy the linker keeps, and then run with AVX-512 instructions on a CPU without them.
#include "rl/model/bf16_fused.h"

#include <immintrin.h>
#include <math.h>
#include <sleef.h>
#include <string.h>

// GCC 12's AVX-512 headers make "undefined" vectors by self-initialisation, which
// -Wuninitialized reports wherever they are inlined (GCC bug 105593, fixed in GCC 13).
#if !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace rl::model {
namespace {

constexpr int64_t kLanes = 16;

float ToFloat(uint16_t bits) {
  const uint32_t widened = static_cast<uint32_t>(bits) << 16;
  float x;
  memcpy(&x, &widened, sizeof x);
  return x;
}

// bf16 is float32's upper half, so widening is a shift.
__m512 Load(const uint16_t* p) {
  const __m256i bits = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(bits), 16));
}

// The last n < 16 values of a row, zeros after them (callers mask those lanes). A bounce
// buffer rather than a masked load, which would need AVX-512 VL.
__m512 LoadTail(const uint16_t* p, int64_t n) {
  uint16_t buffer[kLanes] = {};
  memcpy(buffer, p, static_cast<size_t>(n) * sizeof(uint16_t));
  return Load(buffer);
}

__mmask16 TailMask(int64_t n) { return static_cast<__mmask16>((1u << n) - 1); }

// Nearest-even bf16, as c10::BFloat16 rounds; NaN becomes the quiet NaN 0x7FC0 as there.
__m256i Narrow(__m512 x) {
  const __m512i bits = _mm512_castps_si512(x);
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(1));
  __m512i rounded = _mm512_srli_epi32(_mm512_add_epi32(bits, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7FFF))), 16);
  rounded = _mm512_mask_mov_epi32(rounded, _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), _mm512_set1_epi32(0x7FC0));
  return _mm512_cvtepi32_epi16(rounded);
}

// One value the same way.
uint16_t NarrowOne(float x) {
  if (x != x) return 0x7FC0;
  uint32_t bits;
  memcpy(&bits, &x, sizeof bits);
  return static_cast<uint16_t>((bits + ((bits >> 16) & 1) + 0x7FFF) >> 16);
}

float LargestLogit(const uint16_t* row, int64_t V) {
  __m512 m0 = _mm512_set1_ps(-INFINITY), m1 = m0, m2 = m0, m3 = m0;
  int64_t j = 0;
  for (; j + 4 * kLanes <= V; j += 4 * kLanes) {
    m0 = _mm512_max_ps(m0, Load(row + j));
    m1 = _mm512_max_ps(m1, Load(row + j + kLanes));
    m2 = _mm512_max_ps(m2, Load(row + j + 2 * kLanes));
    m3 = _mm512_max_ps(m3, Load(row + j + 3 * kLanes));
  }
  for (; j + kLanes <= V; j += kLanes) m0 = _mm512_max_ps(m0, Load(row + j));
  if (j < V) m0 = _mm512_mask_max_ps(m0, TailMask(V - j), m0, LoadTail(row + j, V - j));
  return _mm512_reduce_max_ps(_mm512_max_ps(_mm512_max_ps(m0, m1), _mm512_max_ps(m2, m3)));
}

// A row's statistics relative to its largest z, zmax: with y = z − zmax, S = Σ exp(y) and
// U = Σ exp(y)·y, so that lse = zmax + log S and H = log S − U / S (shifted, so both sums stay
// finite and H keeps its digits when the row is peaked).
struct RowStats {
  float zmax = 0, log_sum = 0, entropy = 0;
};

// Two passes: the maximum, then the sums (the second reads the row from cache). Four
// accumulators per sum hide the adds' latency and shorten each one's chain of roundings.
RowStats Statistics(const uint16_t* row, int64_t V, float scale, bool with_entropy) {
  RowStats s;
  s.zmax = LargestLogit(row, V) * scale;  // scale > 0
  const __m512 vscale = _mm512_set1_ps(scale), vzmax = _mm512_set1_ps(s.zmax);
  __m512 sum[4], usum[4];
  for (int a = 0; a < 4; ++a) sum[a] = usum[a] = _mm512_setzero_ps();
  const auto add = [&](int a, __m512 x, __mmask16 keep) {
    const __m512 y = _mm512_fmsub_ps(x, vscale, vzmax);
    const __m512 e = Sleef_expf16_u10avx512f(y);
    sum[a] = _mm512_mask_add_ps(sum[a], keep, sum[a], e);
    if (with_entropy) usum[a] = _mm512_mask_mov_ps(usum[a], keep, _mm512_fmadd_ps(e, y, usum[a]));
  };
  int64_t j = 0;
  for (; j + 4 * kLanes <= V; j += 4 * kLanes) {
    for (int a = 0; a < 4; ++a) add(a, Load(row + j + a * kLanes), 0xFFFF);
  }
  for (; j + kLanes <= V; j += kLanes) add(0, Load(row + j), 0xFFFF);
  if (j < V) add(0, LoadTail(row + j, V - j), TailMask(V - j));
  const auto reduce = [](const __m512* v) {
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(v[0], v[1]), _mm512_add_ps(v[2], v[3])));
  };
  const float total = reduce(sum);
  s.log_sum = logf(total);
  if (with_entropy) {
    const float u = reduce(usum);
    s.entropy = s.log_sum - u / total;
  }
  return s;
}

// log p of logit x: y − log S.
float LogProb(float x, float scale, const RowStats& s) { return fmaf(x, scale, -s.zmax) - s.log_sum; }

// ∂loss/∂logits of one row, in place: scale · (g · (onehot − p) − h · p · (log p + H)).
void GradientRow(uint16_t* row, int64_t V, int64_t target, float scale, float g, float h) {
  const RowStats s = Statistics(row, V, scale, /*with_entropy=*/h != 0);
  const float target_log_p = LogProb(ToFloat(row[target]), scale, s);  // before it is overwritten
  const __m512 vscale = _mm512_set1_ps(scale), vzmax = _mm512_set1_ps(s.zmax), vlog_sum = _mm512_set1_ps(s.log_sum);
  const __m512 vg = _mm512_set1_ps(g), vh = _mm512_set1_ps(h), ventropy = _mm512_set1_ps(s.entropy);
  const __m512 vminus_scale = _mm512_set1_ps(-scale);
  const auto gradient = [&](__m512 x) {
    const __m512 log_p = _mm512_sub_ps(_mm512_fmsub_ps(x, vscale, vzmax), vlog_sum);
    const __m512 p = Sleef_expf16_u10avx512f(log_p);
    const __m512 weight = _mm512_fmadd_ps(vh, _mm512_add_ps(log_p, ventropy), vg);  // g + h (log p + H)
    return Narrow(_mm512_mul_ps(_mm512_mul_ps(p, weight), vminus_scale));
  };
  int64_t j = 0;
  for (; j + kLanes <= V; j += kLanes) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(row + j), gradient(Load(row + j)));
  }
  if (j < V) {
    uint16_t buffer[kLanes];
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(buffer), gradient(LoadTail(row + j, V - j)));
    memcpy(row + j, buffer, static_cast<size_t>(V - j) * sizeof(uint16_t));
  }
  // The target's onehot term, added before rounding.
  const float p = expf(target_log_p);
  const float d = scale * (g * (1 - p) - h * p * (target_log_p + s.entropy));
  row[target] = NarrowOne(d);
}

// Elementwise kernels over [begin, end): `body` maps loaded vectors to stored ones; the tail goes
// through bounce buffers.
template <int kInputs, int kOutputs, typename Body>
void Elementwise(const uint16_t* const (&in)[kInputs], uint16_t* const (&out)[kOutputs], int64_t begin, int64_t end,
                 Body body) {
  __m512 x[kInputs];
  __m256i y[kOutputs];
  int64_t i = begin;
  for (; i + kLanes <= end; i += kLanes) {
    for (int k = 0; k < kInputs; ++k) x[k] = Load(in[k] + i);
    body(x, y);
    for (int k = 0; k < kOutputs; ++k) _mm256_storeu_si256(reinterpret_cast<__m256i*>(out[k] + i), y[k]);
  }
  if (i == end) return;
  for (int k = 0; k < kInputs; ++k) x[k] = LoadTail(in[k] + i, end - i);
  body(x, y);
  for (int k = 0; k < kOutputs; ++k) {
    uint16_t buffer[kLanes];
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(buffer), y[k]);
    memcpy(out[k] + i, buffer, static_cast<size_t>(end - i) * sizeof(uint16_t));
  }
}

// 1 / (1 + exp(−x)).
__m512 Sigmoid(__m512 x) {
  const __m512 one = _mm512_set1_ps(1.0f);
  return _mm512_div_ps(one, _mm512_add_ps(one, Sleef_expf16_u10avx512f(_mm512_sub_ps(_mm512_setzero_ps(), x))));
}

}  // namespace

void Bf16SwiGlu(const uint16_t* gate, const uint16_t* up, uint16_t* out, int64_t begin, int64_t end) {
  Elementwise<2, 1>({gate, up}, {out}, begin, end, [](const __m512* x, __m256i* y) {
    y[0] = Narrow(_mm512_mul_ps(_mm512_mul_ps(x[0], Sigmoid(x[0])), x[1]));
  });
}

void Bf16SwiGluGrad(const uint16_t* gate, const uint16_t* up, const uint16_t* d_out, uint16_t* d_gate,
                    uint16_t* d_up, int64_t begin, int64_t end) {
  Elementwise<3, 2>({gate, up, d_out}, {d_gate, d_up}, begin, end, [](const __m512* x, __m256i* y) {
    const __m512 g = x[0], u = x[1], dy = x[2], one = _mm512_set1_ps(1.0f);
    const __m512 sigmoid = Sigmoid(g);
    // ∂silu/∂g = σ (1 + g (1 − σ))
    const __m512 d_silu = _mm512_mul_ps(sigmoid, _mm512_add_ps(one, _mm512_mul_ps(g, _mm512_sub_ps(one, sigmoid))));
    y[0] = Narrow(_mm512_mul_ps(_mm512_mul_ps(dy, u), d_silu));
    y[1] = Narrow(_mm512_mul_ps(dy, _mm512_mul_ps(g, sigmoid)));
  });
}

void Bf16LogSoftmaxRows(const uint16_t* logits, int64_t V, const int64_t* targets, float scale,
                        int64_t row_begin, int64_t row_end, float* logprob, float* entropy) {
  for (int64_t r = row_begin; r < row_end; ++r) {
    const uint16_t* row = logits + r * V;
    const RowStats s = Statistics(row, V, scale, entropy != nullptr);
    logprob[r] = LogProb(ToFloat(row[targets[r]]), scale, s);
    if (entropy != nullptr) entropy[r] = s.entropy;
  }
}

void Bf16LogSoftmaxGradRows(uint16_t* logits, int64_t V, const int64_t* targets, float scale,
                            const float* d_logprob, const float* d_entropy, int64_t row_begin,
                            int64_t row_end) {
  for (int64_t r = row_begin; r < row_end; ++r) {
    GradientRow(logits + r * V, V, targets[r], scale, d_logprob != nullptr ? d_logprob[r] : 0.0f,
                d_entropy != nullptr ? d_entropy[r] : 0.0f);
  }
}

}  // namespace rl::model
