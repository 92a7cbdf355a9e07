// common/random.h: small, fully specified random streams (Steele et al.'s SplitMix64), so that
// generated data, orders and samples are the same with every standard library and platform.
//
//   rl::common::SplitMix64 rng(seed);
//   rng.Next();  rng.Below(10);  rng.Uniform();     // a stream
//   rl::common::SplitMix64Hash(x);                   // one value: the stream's first for seed x
//   rl::common::DeriveSeed(run_seed, "rollout", {step, round});  // the seed of one use
//
// Thread safety: a SplitMix64 is a plain value, one per thread.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string_view>

namespace rl::common {

// The first value of a SplitMix64 stream seeded with x (x plus the golden gamma, finalised):
// a good 64-bit mixing function for counter-based streams.
constexpr uint64_t SplitMix64Hash(uint64_t x) {
  uint64_t z = x + 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// The seed of one use of a seed: each purpose ("task", "init", "sft order", "rollout", ...) and
// each index under it (a step, a sampling round, an epoch) gets a stream of its own, unrelated
// to the others, and a new purpose shifts no existing one. Every stream of a run is derived
// from its one seed this way.
constexpr uint64_t DeriveSeed(uint64_t seed, std::string_view purpose,
                              std::initializer_list<uint64_t> indices = {}) {
  uint64_t name = 0xcbf29ce484222325ULL;  // FNV-1a of the purpose
  for (const char c : purpose) name = (name ^ static_cast<unsigned char>(c)) * 0x100000001b3ULL;
  uint64_t x = SplitMix64Hash(seed ^ SplitMix64Hash(name));
  for (const uint64_t index : indices) x = SplitMix64Hash(x ^ index);
  return x;
}

class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    const uint64_t value = SplitMix64Hash(state_);
    state_ += 0x9e3779b97f4a7c15ULL;
    return value;
  }
  uint64_t Below(uint64_t n) { return Next() % n; }  // bias below 2^-50 for small n
  double Uniform() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }  // [0, 1)

 private:
  uint64_t state_;
};

}  // namespace rl::common
