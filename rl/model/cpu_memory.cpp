#include "rl/model/cpu_memory.h"

#include <sys/mman.h>

#include <cstdint>
#include <cstdlib>
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
constexpr size_t kMaxCachedBytes = size_t{4} << 30;

// Large blocks, 2 MiB-aligned on huge pages, and the freed ones kept for reuse by size.
class BlockCache {
 public:
  void* Allocate(size_t bytes) {
    const size_t rounded = (bytes + kHugePage - 1) / kHugePage * kHugePage;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (auto it = free_.find(rounded); it != free_.end()) {
        void* p = it->second;
        free_.erase(it);
        cached_bytes_ -= rounded;
        live_[p] = rounded;
        return p;
      }
    }
    void* p = nullptr;
    if (posix_memalign(&p, kHugePage, rounded) != 0) throw std::bad_alloc();
    madvise(p, rounded, MADV_HUGEPAGE);  // advice: a kernel without THP ignores it
    std::lock_guard<std::mutex> lock(mutex_);
    live_[p] = rounded;
    return p;
  }

  // Keeps a block of ours for reuse (the largest cached ones go back to the system beyond the
  // cap); frees any other (LibTorch's small blocks) as LibTorch does.
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
    free_.emplace(bytes, p);
    cached_bytes_ += bytes;
    while (cached_bytes_ > kMaxCachedBytes) {
      const auto largest = std::prev(free_.end());
      cached_bytes_ -= largest->first;
      std::free(largest->second);
      free_.erase(largest);
    }
  }

 private:
  std::mutex mutex_;
  std::unordered_map<void*, size_t> live_;  // block -> its rounded size
  std::multimap<size_t, void*> free_;       // rounded size -> cached block
  size_t cached_bytes_ = 0;
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

void UseHugePagesForLargeTensors() {
  // One allocator for the process's lifetime (LibTorch keeps the pointer).
  static HugePageAllocator allocator;
  c10::SetCPUAllocator(&allocator, /*priority=*/1);
}

}  // namespace rl::model
