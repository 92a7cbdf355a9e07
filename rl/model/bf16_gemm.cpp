// Three kernels. The two vector kernels compute MR×NR tiles of dot products over slices of K,
// walked by one blocking loop so that a block of x rows stays in cache while the weight rows
// stream through once; the AMX kernel multiplies 16×16 tiles, two by two, over blocks of weight
// rows that stay in cache while all of x passes. Each is compiled for its instruction set with
// function attributes and chosen at run time, so the binary still runs on CPUs without them.
#include "rl/model/bf16_gemm.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#include <immintrin.h>
#define RL_HAVE_X86_KERNELS 1
#endif
#if RL_HAVE_X86_KERNELS && defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#define RL_HAVE_AMX 1
#endif

namespace rl::model {
namespace {

#if RL_HAVE_X86_KERNELS

float Bf16ToFloat(uint16_t bits) {
  const uint32_t u = static_cast<uint32_t>(bits) << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

// Round to nearest, ties to even, as c10::BFloat16 does; a NaN stays a quiet NaN.
uint16_t RoundToBf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

// An output from its float32 dot product: plus the bias, rounded once.
uint16_t Finish(float dot, const uint16_t* bias, int64_t n) {
  return RoundToBf16(bias != nullptr ? dot + Bf16ToFloat(bias[n]) : dot);
}

// x rows kept in cache while the weight rows stream past: 64 rows of a slice (below) are 64 KiB.
constexpr int64_t kRowBlock = 64;
constexpr int kMaxTile = 4;  // neither kernel's tile exceeds 4×4
using TileOut = float[kMaxTile][kMaxTile];

// GCC 12's AVX-512 headers make "undefined" vectors by self-initialisation, which
// -Wuninitialized reports wherever they are inlined (GCC bug 105593, fixed in GCC 13).
#if !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#define RL_TARGET_AVX512 __attribute__((target("avx512f,avx512bw,fma")))
#define RL_TARGET_AVX2 __attribute__((target("avx2,fma")))

// Both kernels widen bf16 to float32 without shuffles: a 32-bit lane holding two bf16 values
// (even element low, odd element high) gives the odd one as a float32 by clearing the low half
// and the even one by shifting it up. Products of bf16 values are exact in float32, and
// float32 FMAs run at twice the rate of VDPBF16PS on the Xeon this was measured on.

// out[i][j] = Σ_{k<K} x[i*stride + k] · w[j*stride + k] over chunks of 32; the tail of K is read
// with a masked load, so it is reduced exactly like a full chunk.
template <int MR, int NR>
RL_TARGET_AVX512 void TileAvx512(const uint16_t* x, const uint16_t* w, const uint16_t* next_w,
                                 int64_t stride, int64_t K, TileOut& out) {
  const __m512i high = _mm512_set1_epi32(static_cast<int>(0xFFFF0000u));
  __m512 acc[MR][NR];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 16
    for (int j = 0; j < NR; ++j) acc[i][j] = _mm512_setzero_ps();
  for (int64_t k = 0; k < K; k += 32) {
    const __mmask32 mask = K - k >= 32 ? ~__mmask32{0} : (__mmask32{1} << (K - k)) - 1;
    __m512 w_even[NR], w_odd[NR];
#pragma GCC unroll 16
    for (int j = 0; j < NR; ++j) {
      _mm_prefetch(reinterpret_cast<const char*>(next_w + j * stride + k), _MM_HINT_T0);
      const __m512i v = _mm512_maskz_loadu_epi16(mask, w + j * stride + k);
      w_even[j] = _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
      w_odd[j] = _mm512_castsi512_ps(_mm512_and_si512(v, high));
    }
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      const __m512i v = _mm512_maskz_loadu_epi16(mask, x + i * stride + k);
      const __m512 x_even = _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
      const __m512 x_odd = _mm512_castsi512_ps(_mm512_and_si512(v, high));
#pragma GCC unroll 16
      for (int j = 0; j < NR; ++j) {
        acc[i][j] = _mm512_fmadd_ps(x_even, w_even[j], acc[i][j]);
        acc[i][j] = _mm512_fmadd_ps(x_odd, w_odd[j], acc[i][j]);
      }
    }
  }
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 16
    for (int j = 0; j < NR; ++j) out[i][j] = _mm512_reduce_add_ps(acc[i][j]);
}

RL_TARGET_AVX2 inline float Sum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// The same tile with 8 lanes over chunks of 16. AVX2 has no 16-bit masked load: the tail of K
// is copied into a zero-padded chunk, so that it too goes through the vector path.
template <int MR, int NR>
RL_TARGET_AVX2 void TileAvx2(const uint16_t* x, const uint16_t* w, const uint16_t* next_w,
                             int64_t stride, int64_t K, TileOut& out) {
  const __m256i high = _mm256_set1_epi32(static_cast<int>(0xFFFF0000u));
  __m256 acc[MR][NR];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 16
    for (int j = 0; j < NR; ++j) acc[i][j] = _mm256_setzero_ps();
  uint16_t x_tail[MR][16] = {}, w_tail[NR][16] = {};
  for (int64_t k = 0; k < K; k += 16) {
    const bool full = K - k >= 16;
    if (!full) {
      for (int i = 0; i < MR; ++i) std::copy(x + i * stride + k, x + i * stride + K, x_tail[i]);
      for (int j = 0; j < NR; ++j) std::copy(w + j * stride + k, w + j * stride + K, w_tail[j]);
    }
    __m256 w_even[NR], w_odd[NR];
#pragma GCC unroll 16
    for (int j = 0; j < NR; ++j) {
      if (k % 32 == 0)
        _mm_prefetch(reinterpret_cast<const char*>(next_w + j * stride + k), _MM_HINT_T0);
      const __m256i v = _mm256_loadu_si256(
          reinterpret_cast<const __m256i*>(full ? w + j * stride + k : w_tail[j]));
      w_even[j] = _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
      w_odd[j] = _mm256_castsi256_ps(_mm256_and_si256(v, high));
    }
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      const __m256i v = _mm256_loadu_si256(
          reinterpret_cast<const __m256i*>(full ? x + i * stride + k : x_tail[i]));
      const __m256 x_even = _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
      const __m256 x_odd = _mm256_castsi256_ps(_mm256_and_si256(v, high));
#pragma GCC unroll 16
      for (int j = 0; j < NR; ++j) {
        acc[i][j] = _mm256_fmadd_ps(x_even, w_even[j], acc[i][j]);
        acc[i][j] = _mm256_fmadd_ps(x_odd, w_odd[j], acc[i][j]);
      }
    }
  }
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 16
    for (int j = 0; j < NR; ++j) out[i][j] = Sum8(acc[i][j]);
}

// A kernel's tile shape, and its instantiations for every partial tile at the edges:
// fns[mr - 1][nr - 1] computes an mr×nr tile.
// next_w: the weight rows of the tile to come, prefetched a cache line per row and chunk so that
// they arrive while this tile computes (the hardware prefetcher alone left the FMAs waiting).
using TileFn = void (*)(const uint16_t* x, const uint16_t* w, const uint16_t* next_w,
                        int64_t stride, int64_t K, TileOut& out);
struct Tiles {
  int mr, nr;
  TileFn fns[kMaxTile][kMaxTile];
};

// Function templates cannot be template arguments; these wrappers can.
template <int MR, int NR>
struct Avx512Tile {
  static constexpr TileFn fn = &TileAvx512<MR, NR>;
};
template <int MR, int NR>
struct Avx2Tile {
  static constexpr TileFn fn = &TileAvx2<MR, NR>;
};

template <template <int, int> class Tile, int MR, int NR>
constexpr Tiles MakeTiles() {
  Tiles t{MR, NR, {}};
  [&]<int... I>(std::integer_sequence<int, I...>) {
    ((t.fns[I / NR][I % NR] = Tile<I / NR + 1, I % NR + 1>::fn), ...);
  }(std::make_integer_sequence<int, MR * NR>{});
  return t;
}

// AVX-512: 16 accumulators + 8 weight halves + 2 input halves of 32 zmm registers.
constexpr Tiles kAvx512Tiles = MakeTiles<Avx512Tile, 4, 4>();
// AVX2: 6 accumulators + 6 + 2, and the mask, of 16 ymm registers.
constexpr Tiles kAvx2Tiles = MakeTiles<Avx2Tile, 2, 3>();

// Rows of x and w are cut into slices of kSlice: a weight tile's slice (4 KiB) stays in L1
// while every x row of the block passes it. An output is the sum, in slice order, of its
// slices' dot products, whatever M is.
constexpr int64_t kSlice = 512;

void GemmColumns(const Tiles& tiles, const uint16_t* x, const uint16_t* w, const uint16_t* bias,
                 uint16_t* y, int64_t M, int64_t N, int64_t K, int64_t n_begin, int64_t n_end) {
  TileOut out;
  float sums[kRowBlock][kMaxTile];
  for (int64_t m0 = 0; m0 < M; m0 += kRowBlock) {
    const int64_t m_end = std::min(M, m0 + kRowBlock);
    for (int64_t n = n_begin; n < n_end; n += tiles.nr) {
      const int nr = static_cast<int>(std::min<int64_t>(tiles.nr, n_end - n));
      for (int64_t k = 0; k < K; k += kSlice) {
        const int64_t len = std::min(kSlice, K - k);
        // What comes next: this tile's next slice, else the next tile's first.
        const uint16_t* next_w = k + kSlice < K         ? w + n * K + k + kSlice
                                 : n + tiles.nr < n_end ? w + (n + tiles.nr) * K
                                                        : w + n * K;
        for (int64_t m = m0; m < m_end; m += tiles.mr) {
          const int mr = static_cast<int>(std::min<int64_t>(tiles.mr, m_end - m));
          tiles.fns[mr - 1][nr - 1](x + m * K + k, w + n * K + k, next_w, K, len, out);
          for (int i = 0; i < mr; ++i) {
            for (int j = 0; j < nr; ++j) {
              float& sum = sums[m - m0 + i][j];
              sum = k == 0 ? out[i][j] : sum + out[i][j];
            }
          }
        }
      }
      for (int64_t m = m0; m < m_end; ++m) {
        for (int j = 0; j < nr; ++j) y[m * N + n + j] = Finish(sums[m - m0][j], bias, n + j);
      }
    }
  }
}

#if RL_HAVE_AMX

#define RL_TARGET_AMX __attribute__((target("amx-tile,amx-bf16")))

// Linux gives a process the AMX tile registers only on request.
// CPUID leaf 7: AMX-BF16 is EDX bit 22, AMX-TILE bit 24 (clang 14 knows neither name for
// __builtin_cpu_supports).
bool AmxInCpu() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) == 0) return false;
  return (edx >> 22 & 1u) != 0 && (edx >> 24 & 1u) != 0;
}

bool AmxPermitted() {
  constexpr int kArchReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
  static const bool permitted = syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
  return permitted;
}

// AMX multiplies 16×32 bf16 tiles into 16×16 float32 tiles. We compute yᵀ = w · xᵀ so that the
// weight rows are read in place as the left tile; x is repacked once per call as the right
// tile, which pairs bf16 values along K: right[r][2c + t] = x[c][32·chunk + 2r + t].
constexpr int64_t kAmxTile = 16;        // rows of w, and of x, per tile
constexpr int64_t kAmxChunk = 32;       // bf16 along K per tile
constexpr int64_t kAmxTileWords = 256;  // 16 × 16 pairs of bf16
// Weight rows per cache block: as many as fit in this (whole pairs of tiles), so that they
// stay in L2 (2 MiB per core on Sapphire Rapids) while every group of x rows passes them, and
// each weight is read from memory once per call.
constexpr int64_t kAmxBlockBytes = int64_t{1} << 20;

struct alignas(64) AmxConfig {
  uint8_t palette = 1, start_row = 0, reserved[14] = {};
  uint16_t bytes_per_row[16] = {};
  uint8_t rows[16] = {};
};

// The tiles' companions need AVX-512 F/BW/VL, which every CPU with AMX has.
#define RL_TARGET_AMX_VECTOR __attribute__((target("avx512f,avx512bw,avx512vl")))

// Lane i holds i · step.
RL_TARGET_AMX_VECTOR __m512i Strided(int step) {
  return _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                            _mm512_set1_epi32(step));
}

// 16 whole rows of x (K a multiple of 32) as right tiles: each tile row gathers one 32-bit
// pair of bf16 from each of the 16 rows.
RL_TARGET_AMX_VECTOR void PackGroup(const uint16_t* x, int64_t K, int64_t chunks, uint32_t* out) {
  const __m512i rows = Strided(static_cast<int>(K / 2));
  const int* pairs = reinterpret_cast<const int*>(x);
  for (int64_t k = 0; k < chunks; ++k) {
    for (int64_t r = 0; r < kAmxTile; ++r) {
      _mm512_storeu_si512(out + k * kAmxTileWords + r * kAmxTile,
                          _mm512_i32gather_epi32(rows, pairs + k * kAmxTile + r, 4));
    }
  }
}

// x [M,K] as right tiles: [row group of 16][chunk][pair r][row c], zero-padded in both. Whole
// groups are gathered 16 pairs at a time (element by element, packing took a quarter to half
// of a product's time at 1,280 rows); a partial group, or a K with a tail, element by element.
std::vector<uint32_t> PackRightTiles(const uint16_t* x, int64_t M, int64_t K, int64_t chunks) {
  const int64_t groups = (M + kAmxTile - 1) / kAmxTile;
  std::vector<uint32_t> packed(groups * chunks * kAmxTileWords, 0);
  int64_t m = 0;
  if (K % kAmxChunk == 0) {
    for (; m + kAmxTile <= M; m += kAmxTile) {
      PackGroup(x + m * K, K, chunks, packed.data() + (m / kAmxTile) * chunks * kAmxTileWords);
    }
  }
  for (; m < M; ++m) {
    uint32_t* group = packed.data() + (m / kAmxTile) * chunks * kAmxTileWords + m % kAmxTile;
    for (int64_t k = 0; k < K; k += 2) {
      const uint32_t low = x[m * K + k], high = k + 1 < K ? x[m * K + k + 1] : 0;
      group[(k / kAmxChunk) * kAmxTileWords + (k % kAmxChunk) / 2 * kAmxTile] = low | high << 16;
    }
  }
  return packed;
}

// Columns [lo, hi) of an output tile (tile[n - n_tile][m - m0]: 16 weight rows by x rows m0 to
// m_end) into y [M,N]: each x row's column of the tile gathered, the bias added and rounded as
// Finish does, 16 at a time (element by element, this took longer than the tile products at
// K = 896).
RL_TARGET_AMX_VECTOR void FinishTile(const float (&tile)[kAmxTile][kAmxTile], const uint16_t* bias, uint16_t* y,
                                     int64_t N, int64_t n_tile, int64_t lo, int64_t hi, int64_t m0, int64_t m_end) {
  const __mmask16 columns =
      static_cast<__mmask16>(((1u << (hi - n_tile)) - 1) & ~((1u << (lo - n_tile)) - 1));
  const __m512i rows = Strided(kAmxTile);
  __m512 b = _mm512_setzero_ps();
  if (bias != nullptr) {
    b = _mm512_castsi512_ps(
        _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(columns, bias + n_tile)), 16));
  }
  const __m512i one = _mm512_set1_epi32(1), half = _mm512_set1_epi32(0x7fff), quiet = _mm512_set1_epi32(0x40);
  for (int64_t m = m0; m < m_end; ++m) {
    const __m512 v = _mm512_add_ps(_mm512_i32gather_ps(rows, &tile[0][m - m0], 4), b);
    const __m512i u = _mm512_castps_si512(v), high = _mm512_srli_epi32(u, 16);
    const __m512i rounded = _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(u, half), _mm512_and_si512(high, one)), 16);
    const __m512i out = _mm512_mask_mov_epi32(rounded, _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), _mm512_or_si512(high, quiet));
    _mm256_mask_storeu_epi16(y + m * N + n_tile, columns, _mm512_cvtepi32_epi16(out));
  }
}

// kA weight tiles (16 rows each, `a_stride` bytes apart, tiles 4 and 5) times kB groups of
// packed x (tiles 6 and 7) into c[2i + j] (tiles 0-3). Two by two, each tile loaded feeds two
// products: with one of each (the kernel before) the loads, not the tile unit, set the pace.
// Each output still sums its chunks in order in one tile, so its bits do not depend on which
// tiles or how many rows share its block. next_a, unless null, is prefetched alongside: the
// weight rows of the next pair, while these come from memory.
template <int kA, int kB>
RL_TARGET_AMX void AmxBlock(const uint16_t* a, int64_t a_stride, const uint16_t* next_a, const uint32_t* right,
                            int64_t chunks, float (*c)[kAmxTile][kAmxTile]) {
  const int64_t right_group = chunks * kAmxTileWords, a_tile = kAmxTile * a_stride / 2;
  _tile_zero(0);
  if constexpr (kB == 2) _tile_zero(1);
  if constexpr (kA == 2) _tile_zero(2);
  if constexpr (kA == 2 && kB == 2) _tile_zero(3);
  for (int64_t k = 0; k < chunks; ++k) {
    if (next_a != nullptr) {
      for (int64_t i = 0; i < kA * kAmxTile; ++i) {
        _mm_prefetch(reinterpret_cast<const char*>(next_a + k * kAmxChunk) + i * a_stride, _MM_HINT_T0);
      }
    }
    _tile_loadd(4, a + k * kAmxChunk, a_stride);
    _tile_loadd(6, right + k * kAmxTileWords, 64);
    _tile_dpbf16ps(0, 4, 6);
    if constexpr (kB == 2) {
      _tile_loadd(7, right + right_group + k * kAmxTileWords, 64);
      _tile_dpbf16ps(1, 4, 7);
    }
    if constexpr (kA == 2) {
      _tile_loadd(5, a + a_tile + k * kAmxChunk, a_stride);
      _tile_dpbf16ps(2, 5, 6);
      if constexpr (kB == 2) _tile_dpbf16ps(3, 5, 7);
    }
  }
  _tile_stored(0, c[0], 64);
  if constexpr (kB == 2) _tile_stored(1, c[1], 64);
  if constexpr (kA == 2) _tile_stored(2, c[2], 64);
  if constexpr (kA == 2 && kB == 2) _tile_stored(3, c[3], 64);
}

RL_TARGET_AMX void AmxBlockOf(int tiles, int groups, const uint16_t* a, int64_t a_stride, const uint16_t* next_a,
                              const uint32_t* right, int64_t chunks, float (*c)[kAmxTile][kAmxTile]) {
  if (tiles == 2 && groups == 2) return AmxBlock<2, 2>(a, a_stride, next_a, right, chunks, c);
  if (tiles == 2) return AmxBlock<2, 1>(a, a_stride, next_a, right, chunks, c);
  if (groups == 2) return AmxBlock<1, 2>(a, a_stride, next_a, right, chunks, c);
  AmxBlock<1, 1>(a, a_stride, next_a, right, chunks, c);
}

// Blocks of weight rows of about kAmxBlockBytes; within one, pairs of x row groups pass pairs
// of weight tiles. Tiles sit on multiples of 16 rows of w whatever [n_begin, n_end) is, so every output
// is computed the same way however the columns are split.
RL_TARGET_AMX void GemmColumnsAmx(const uint16_t* x, const uint16_t* w, const uint16_t* bias,
                                  uint16_t* y, int64_t M, int64_t N, int64_t K, int64_t n_begin,
                                  int64_t n_end) {
  const int64_t chunks = (K + kAmxChunk - 1) / kAmxChunk, groups = (M + kAmxTile - 1) / kAmxTile;
  const std::vector<uint32_t> right = PackRightTiles(x, M, K, chunks);
  AmxConfig config;
  for (int t = 0; t < 8; ++t) config.bytes_per_row[t] = 64, config.rows[t] = kAmxTile;
  _tile_loadconfig(&config);
  std::vector<uint16_t> padded;  // weight rows copied when a tile would read past a row's end
  alignas(64) float c[4][kAmxTile][kAmxTile];
  const int64_t block_rows = std::max<int64_t>(1, kAmxBlockBytes / (2 * kAmxTile * chunks * kAmxChunk * 2)) * 2 * kAmxTile;
  for (int64_t n0 = n_begin / kAmxTile * kAmxTile; n0 < n_end; n0 += block_rows) {
    const int64_t n1 = std::min(n_end, n0 + block_rows);
    // The block's rows are read in place, or copied once, zero-padded, when a tile would read
    // past a row's end (K not a multiple of 32) or past w's last row.
    const int64_t rows = (n1 - n0 + kAmxTile - 1) / kAmxTile * kAmxTile;
    const bool in_place = K % kAmxChunk == 0 && n0 + rows <= N;
    const uint16_t* block = w + n0 * K;
    const int64_t a_stride = in_place ? K * 2 : chunks * kAmxChunk * 2;
    if (!in_place) {
      padded.assign(rows * chunks * kAmxChunk, 0);
      for (int64_t i = 0; i < rows && n0 + i < N; ++i)
        std::copy(block + i * K, block + (i + 1) * K, padded.begin() + i * chunks * kAmxChunk);
      block = padded.data();
    }
    for (int64_t g = 0; g < groups; g += 2) {
      const int gs = groups - g >= 2 ? 2 : 1;
      for (int64_t n = n0; n < n1; n += 2 * kAmxTile) {
        const int tiles = n + kAmxTile < n1 ? 2 : 1;
        const uint16_t* a = block + (n - n0) * a_stride / 2;
        // Prefetch while the first groups pass: later ones find the block in cache.
        const uint16_t* next_a = g == 0 && in_place && n + 4 * kAmxTile <= N ? a + 2 * kAmxTile * K : nullptr;
        AmxBlockOf(tiles, gs, a, a_stride, next_a, right.data() + g * chunks * kAmxTileWords, chunks, c);
        for (int i = 0; i < tiles; ++i) {
          const int64_t lo = std::max(n_begin, n + i * kAmxTile), hi = std::min(n_end, n + (i + 1) * kAmxTile);
          for (int j = 0; j < gs; ++j) {
            const int64_t m0 = (g + j) * kAmxTile;
            FinishTile(c[2 * i + j], bias, y, N, n + i * kAmxTile, lo, hi, m0, std::min(M, m0 + kAmxTile));
          }
        }
      }
    }
  }
  _tile_release();
}

#endif  // RL_HAVE_AMX

#endif  // RL_HAVE_X86_KERNELS

}  // namespace

bool Bf16KernelSupported(Bf16Kernel kernel) {
  switch (kernel) {
    case Bf16Kernel::kNone:
      return true;
#if RL_HAVE_X86_KERNELS
    case Bf16Kernel::kAvx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case Bf16Kernel::kAvx512:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("fma");
#endif
#if RL_HAVE_AMX
    case Bf16Kernel::kAmx:
      return AmxInCpu() && AmxPermitted();
#endif
    default:
      return false;
  }
}

Bf16Kernel BestBf16Kernel() {
  static const Bf16Kernel best = [] {
    for (Bf16Kernel k : {Bf16Kernel::kAmx, Bf16Kernel::kAvx512, Bf16Kernel::kAvx2})
      if (Bf16KernelSupported(k)) return k;
    return Bf16Kernel::kNone;
  }();
  return best;
}

std::string_view Bf16KernelName(Bf16Kernel kernel) {
  switch (kernel) {
    case Bf16Kernel::kAvx2:
      return "avx2";
    case Bf16Kernel::kAvx512:
      return "avx512";
    case Bf16Kernel::kAmx:
      return "amx";
    default:
      return "torch";
  }
}

int64_t Bf16KernelMaxRows(Bf16Kernel kernel) {
  switch (kernel) {
    case Bf16Kernel::kAmx:
      return 64;
    case Bf16Kernel::kAvx512:
      return 8;
    case Bf16Kernel::kAvx2:
      return 4;
    default:
      return 0;
  }
}

std::optional<Bf16Kernel> Bf16KernelNamed(std::string_view name) {
  if (name == "auto") return BestBf16Kernel();
  for (Bf16Kernel k :
       {Bf16Kernel::kNone, Bf16Kernel::kAvx2, Bf16Kernel::kAvx512, Bf16Kernel::kAmx}) {
    if (name == Bf16KernelName(k)) return k;
  }
  return std::nullopt;
}

void Bf16GemmColumns(Bf16Kernel kernel, const uint16_t* x, const uint16_t* w, const uint16_t* bias,
                     uint16_t* y, int64_t M, int64_t N, int64_t K, int64_t n_begin, int64_t n_end) {
  if (kernel == Bf16Kernel::kNone || !Bf16KernelSupported(kernel)) {
    throw std::invalid_argument("Bf16GemmColumns: kernel '" + std::string(Bf16KernelName(kernel)) +
                                "' does not run on this CPU");
  }
  if (M < 0 || N < 0 || K <= 0 || n_begin < 0 || n_begin > n_end || n_end > N) {
    throw std::invalid_argument("Bf16GemmColumns: bad shape M=" + std::to_string(M) + " N=" +
                                std::to_string(N) + " K=" + std::to_string(K) + " columns [" +
                                std::to_string(n_begin) + ", " + std::to_string(n_end) + ")");
  }
#if RL_HAVE_AMX
  if (kernel == Bf16Kernel::kAmx) return GemmColumnsAmx(x, w, bias, y, M, N, K, n_begin, n_end);
#endif
#if RL_HAVE_X86_KERNELS
  if (kernel == Bf16Kernel::kAvx512)
    GemmColumns(kAvx512Tiles, x, w, bias, y, M, N, K, n_begin, n_end);
  else
    GemmColumns(kAvx2Tiles, x, w, bias, y, M, N, K, n_begin, n_end);
#else
  (void)x, (void)w, (void)bias, (void)y;  // unreachable: no kernel is supported here
#endif
}

}  // namespace rl::model
