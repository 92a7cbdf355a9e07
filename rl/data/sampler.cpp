#include "rl/data/sampler.h"

#include <numeric>
#include <stdexcept>
#include <string>

namespace rl::data {

EpochSampler::EpochSampler(int64_t size, uint64_t seed, bool shuffle)
    : size_(size), seed_(seed), shuffle_(shuffle) {
  if (size < 1) throw std::invalid_argument("EpochSampler: the dataset is empty");
  MakeOrder();
}

void EpochSampler::MakeOrder() {
  order_.resize(static_cast<size_t>(size_));
  std::iota(order_.begin(), order_.end(), int64_t{0});
  if (!shuffle_) return;
  common::SplitMix64 rng(common::DeriveSeed(seed_, "epoch", {static_cast<uint64_t>(position_.epoch)}));
  Shuffle(order_, rng);
}

std::vector<int64_t> EpochSampler::Next(int64_t count) {
  std::vector<int64_t> out;
  out.reserve(static_cast<size_t>(count));
  while (static_cast<int64_t>(out.size()) < count) {
    if (position_.offset == size_) {
      ++position_.epoch;
      position_.offset = 0;
      MakeOrder();
    }
    out.push_back(order_[static_cast<size_t>(position_.offset++)]);
  }
  return out;
}

void EpochSampler::Seek(Position position) {
  if (position.epoch < 0 || position.offset < 0 || position.offset > size_) {
    throw std::invalid_argument("EpochSampler: position (" + std::to_string(position.epoch) + ", " +
                                std::to_string(position.offset) + ") is outside a dataset of " +
                                std::to_string(size_));
  }
  position_ = position;
  MakeOrder();
}

}  // namespace rl::data
