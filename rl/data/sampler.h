// rl/data/sampler.h: reproducible, resumable order over a dataset.
//
//   rl::data::EpochSampler sampler(/*size=*/dataset.size(), /*seed=*/7, /*shuffle=*/true);
//   std::vector<int64_t> batch = sampler.Next(16);   // indices into the dataset
//   EpochSampler::Position where = sampler.position();  // save with a checkpoint ...
//   sampler.Seek(where);                                // ... and continue exactly there
//
// Each epoch visits every index once, in an order that depends only on (seed, epoch), so the
// position (epoch, offset) is all the state a checkpoint needs. Batches may span epochs.
// Thread safety: an EpochSampler is not synchronised; use one per thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "common/random.h"

namespace rl::data {

// Fisher–Yates with SplitMix64.
template <class T>
void Shuffle(std::vector<T>& items, common::SplitMix64& rng) {
  for (std::size_t i = items.size(); i > 1; --i) {
    std::swap(items[i - 1], items[rng.Below(i)]);
  }
}

class EpochSampler {
 public:
  struct Position {
    int64_t epoch = 0;
    int64_t offset = 0;
  };

  EpochSampler(int64_t size, uint64_t seed, bool shuffle);

  std::vector<int64_t> Next(int64_t count);
  Position position() const { return position_; }
  void Seek(Position position);

 private:
  void MakeOrder();

  int64_t size_;
  uint64_t seed_;
  bool shuffle_;
  Position position_;
  std::vector<int64_t> order_;  // the current epoch's order
};

}  // namespace rl::data
