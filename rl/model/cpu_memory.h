// rl/model/cpu_memory.h: LibTorch's CPU tensors of 2 MiB and more on transparent huge pages.
//
//   rl::model::UseHugePagesForLargeTensors();   // once, before the large tensors are made
//
// A training step allocates and frees gigabytes of activations, gradients and temporaries, and
// the first touch of each fresh page is a page fault. On virtual machines that hand freed guest
// memory back to the host (free-page reporting, as on our CI's Firecracker VMs) every such
// fault goes to the host: touching a fresh 544 MB tensor took 3.1-3.6 s there, ~6 s per GB. With
// 2 MiB pages there are 512 times fewer faults: the same allocation took 0.06 s when reused and
// 1.4 s the first time (a C program allocating, touching and freeing 544 MB three times with
// glibc.malloc.hugetlb=1, the allocation path this module gives LibTorch). PyTorch 2.x offers the
// same behind THP_MEM_ALLOC_ENABLE=1; LibTorch 1.13 has no such switch.
//
// Blocks of 2 MiB and more are mapped 2 MiB-aligned and advised MADV_HUGEPAGE (a no-op where the
// kernel's THP mode is "never", and the kernel's default where it is "always"); smaller ones
// come from LibTorch's own allocation function. Tensors made earlier keep their allocator.
//
// Freed large blocks are kept and handed out again (the best fit, split and merged in 2 MiB
// pages), as PyTorch's GPU caching allocator does: glibc returns blocks above 32 MiB to the
// system at once, so every step faulted its activations, casts and gradients in afresh, and the
// page clearing behind those faults (clear_page in the kernel) took 60-96% of a bf16 GRPO step's
// samples under perf on this VM. The cache never raises the peak: what is mapped, live and
// cached, stays within the most that has been live at once since the last ReleaseCachedBlocks(),
// so a block is kept only where the peak has room for it, and the peak RSS is what the tensors
// alone would need. ReleaseCachedBlocks() hands the cache back, as torch.cuda.empty_cache() does.
// Thread safety: call UseHugePagesForLargeTensors before other threads make tensors; the
// allocator takes a mutex.
#pragma once

#include <cstddef>

namespace rl::model {

void UseHugePagesForLargeTensors();

// Returns every cached block to the system (blocks in use are untouched) and starts a new peak.
void ReleaseCachedBlocks();

// Bytes of the large blocks (2 MiB pages each): in use, cached, and the most in use at once
// since the last ReleaseCachedBlocks().
struct LargeBlockStats {
  size_t live_bytes = 0;
  size_t cached_bytes = 0;
  size_t peak_live_bytes = 0;
};
LargeBlockStats LargeBlocks();

}  // namespace rl::model
