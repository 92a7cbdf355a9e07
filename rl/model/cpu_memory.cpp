#include "rl/model/cpu_memory.h"

#include <sys/mman.h>

#include <cstdlib>
#include <new>

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <c10/core/impl/alloc_cpu.h>

namespace rl::model {
namespace {

constexpr size_t kHugePage = size_t{2} << 20;

// Every block is freed by c10::free_cpu (free()), LibTorch's own deallocator: raw_deallocate
// (oneDNN's scratch buffers) needs one deleter for all of them.
class HugePageAllocator final : public c10::Allocator {
 public:
  c10::DataPtr allocate(size_t bytes) const override {
    void* p = nullptr;
    if (bytes < kHugePage) {
      p = c10::alloc_cpu(bytes);  // LibTorch's default path (64-byte aligned, throws when out of memory)
    } else {
      const size_t rounded = (bytes + kHugePage - 1) / kHugePage * kHugePage;
      if (posix_memalign(&p, kHugePage, rounded) != 0) throw std::bad_alloc();
      madvise(p, rounded, MADV_HUGEPAGE);  // advice: a kernel without THP ignores it
    }
    return {p, p, &c10::free_cpu, c10::Device(c10::DeviceType::CPU)};
  }
  c10::DeleterFnPtr raw_deleter() const override { return &c10::free_cpu; }
};

}  // namespace

void UseHugePagesForLargeTensors() {
  // One allocator for the process's lifetime (LibTorch keeps the pointer).
  static HugePageAllocator allocator;
  c10::SetCPUAllocator(&allocator, /*priority=*/1);
}

}  // namespace rl::model
