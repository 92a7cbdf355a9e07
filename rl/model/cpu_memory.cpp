#include "rl/model/cpu_memory.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <mutex>
#include <new>
#include <unordered_map>

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <c10/core/impl/alloc_cpu.h>

namespace rl::model {
namespace {

constexpr size_t kHugePage = size_t{2} << 20;

// A 2 MiB-aligned mapping of `bytes` (a multiple of 2 MiB), advised onto huge pages. Mapped
// directly rather than through glibc, whose heaps serve blocks under its mmap threshold (which
// grows to 32 MiB) and keep them resident once freed: unmapping hands the memory back at once.
void* MapBlock(size_t bytes) {
  const size_t span = bytes + kHugePage;  // room to align the start
  void* raw = mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) throw std::bad_alloc();
  const uintptr_t start = reinterpret_cast<uintptr_t>(raw);
  const uintptr_t aligned = (start + kHugePage - 1) / kHugePage * kHugePage;
  if (aligned > start) munmap(raw, aligned - start);
  if (start + span > aligned + bytes) munmap(reinterpret_cast<void*>(aligned + bytes), start + span - (aligned + bytes));
  void* p = reinterpret_cast<void*>(aligned);
  madvise(p, bytes, MADV_HUGEPAGE);  // advice: a kernel without THP ignores it
  return p;
}

// Large blocks, 2 MiB-aligned on huge pages, and the freed ones kept for reuse: the best fit
// (the smallest cached block large enough) serves a request, split when larger, and freed
// blocks merge with cached neighbours. What is mapped, live and cached, never passes the most
// that has been live at once since the last Release(): a miss first unmaps that much cache.
// So the cache reuses memory the peak has already faulted in but never raises the peak (exact
// sizes alone cached each size's own peak: 3.4 GiB beside 4.0 GiB live after a bf16 step).
class BlockCache {
 public:
  void* Allocate(size_t bytes) {
    const size_t rounded = (bytes + kHugePage - 1) / kHugePage * kHugePage;
    std::unique_lock<std::mutex> lock(mutex_);
    live_bytes_ += rounded;
    peak_live_bytes_ = std::max(peak_live_bytes_, live_bytes_);
    if (char* p = TakeCached(rounded)) {
      live_[p] = rounded;
      return p;
    }
    if (live_bytes_ + cached_bytes_ > peak_live_bytes_) UnmapCached(live_bytes_ + cached_bytes_ - peak_live_bytes_);
    lock.unlock();
    void* p = nullptr;
    try {
      p = MapBlock(rounded);
    } catch (const std::bad_alloc&) {
      lock.lock();
      live_bytes_ -= rounded;
      throw;
    }
    lock.lock();
    live_[p] = rounded;
    return p;
  }

  // Keeps a block of ours for reuse; frees any other (LibTorch's small blocks) as LibTorch does.
  void Free(void* p) {
    if (reinterpret_cast<uintptr_t>(p) % kHugePage != 0) {  // not ours: skip the lock
      c10::free_cpu(p);
      return;
    }
    std::unique_lock<std::mutex> lock(mutex_);
    const auto it = live_.find(p);
    if (it == live_.end()) {
      lock.unlock();
      c10::free_cpu(p);
      return;
    }
    const size_t bytes = it->second;
    live_.erase(it);
    live_bytes_ -= bytes;
    Cache(static_cast<char*>(p), bytes);
  }

  void Release() {
    std::lock_guard<std::mutex> lock(mutex_);
    UnmapCached(cached_bytes_);
    peak_live_bytes_ = live_bytes_;
  }

  LargeBlockStats Stats() {
    std::lock_guard<std::mutex> lock(mutex_);
    return {live_bytes_, cached_bytes_, peak_live_bytes_};
  }

 private:
  // With the lock held, from here down.
  void Cache(char* p, size_t bytes) {
    if (const auto next = by_address_.find(p + bytes); next != by_address_.end()) {
      bytes += next->second;
      Uncache(next);
    }
    if (auto before = by_address_.lower_bound(p); before != by_address_.begin()) {
      if (--before; before->first + before->second == p) {
        p = before->first;
        bytes += before->second;
        Uncache(before);
      }
    }
    by_address_.emplace(p, bytes);
    by_size_.emplace(bytes, p);
    cached_bytes_ += bytes;
  }

  void Uncache(std::map<char*, size_t>::iterator it) {
    auto entry = by_size_.lower_bound(it->second);  // the first of its size; the block is among them
    while (entry->second != it->first) ++entry;
    by_size_.erase(entry);
    cached_bytes_ -= it->second;
    by_address_.erase(it);
  }

  // The smallest cached block of at least `bytes`, its tail cached again; null when none is.
  char* TakeCached(size_t bytes) {
    const auto fit = by_size_.lower_bound(bytes);
    if (fit == by_size_.end()) return nullptr;
    const auto [size, p] = *fit;
    Uncache(by_address_.find(p));
    if (size > bytes) Cache(p + bytes, size - bytes);
    return p;
  }

  // Unmaps at least `bytes` of cache, the largest blocks first (their tails where a part will
  // do).
  void UnmapCached(size_t bytes) {
    while (bytes > 0 && !by_size_.empty()) {
      const auto [size, p] = *std::prev(by_size_.end());
      Uncache(by_address_.find(p));
      const size_t cut = std::min(size, bytes);
      munmap(p + size - cut, cut);
      if (cut < size) Cache(p, size - cut);
      bytes -= cut;
    }
  }

  std::mutex mutex_;
  std::unordered_map<void*, size_t> live_;  // block -> its rounded size
  std::map<char*, size_t> by_address_;      // cached block -> its size
  std::multimap<size_t, char*> by_size_;    // the same, by size
  size_t live_bytes_ = 0, cached_bytes_ = 0, peak_live_bytes_ = 0;
};

BlockCache& Blocks() {
  static BlockCache* cache = new BlockCache;  // never destroyed: tensors may outlive static destructors
  return *cache;
}

void FreeBlock(void* p) { Blocks().Free(p); }

// One deleter for every block: raw_deallocate (oneDNN's scratch buffers) needs one for all.
class HugePageAllocator final : public c10::Allocator {
 public:
  c10::DataPtr allocate(size_t bytes) const override {
    // Small blocks take LibTorch's default path (64-byte aligned, throws when out of memory).
    void* p = bytes < kHugePage ? c10::alloc_cpu(bytes) : Blocks().Allocate(bytes);
    return {p, p, &FreeBlock, c10::Device(c10::DeviceType::CPU)};
  }
  c10::DeleterFnPtr raw_deleter() const override { return &FreeBlock; }
};

}  // namespace

void ReleaseCachedBlocks() { Blocks().Release(); }

LargeBlockStats LargeBlocks() { return Blocks().Stats(); }

void UseHugePagesForLargeTensors() {
  // One allocator for the process's lifetime (LibTorch keeps the pointer).
  static HugePageAllocator allocator;
  c10::SetCPUAllocator(&allocator, /*priority=*/1);
}

}  // namespace rl::model
