// rl/model/cpu_memory.h: large CPU tensors on 2 MiB-aligned blocks, a freed block serving the
// next tensor of its size or smaller ones, and a cache that never raises the peak.
#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

#include "tests/support/catch_torch.h"

#include <torch/types.h>

#include "rl/model/cpu_memory.h"

TEST_CASE("a freed large tensor's block serves the next tensor of its size", "[memory]") {
  rl::model::UseHugePagesForLargeTensors();  // what ConfigureThreads installs
  constexpr int64_t kFloats = int64_t{3} << 20;  // 12 MiB
  const void* first = nullptr;
  {
    torch::Tensor a = torch::empty({kFloats});
    first = a.data_ptr();
    CHECK(reinterpret_cast<uintptr_t>(first) % (uintptr_t{2} << 20) == 0);
  }
  torch::Tensor b = torch::full({kFloats}, 2.0f);
  CHECK(b.data_ptr() == first);  // reused, not faulted in afresh
  CHECK(b.sum().item<double>() == 2.0 * kFloats);
  torch::Tensor c = torch::empty({kFloats});  // b still lives: another block
  CHECK(c.data_ptr() != first);
  torch::Tensor other = torch::empty({kFloats + (int64_t{1} << 20)});  // another size in 2 MiB pages
  CHECK(other.data_ptr() != first);
  CHECK(torch::ones({16}).sum().item<double>() == 16);  // small tensors: LibTorch's own path

  // Threads allocating and freeing at once keep their own values.
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&wrong, t] {
      for (int i = 0; i < 40; ++i) {
        const torch::Tensor x = torch::full({int64_t{1 + (i + t) % 3} << 19}, static_cast<float>(t + 1));
        if (x.sum().item<double>() != static_cast<double>(t + 1) * static_cast<double>(x.numel())) ++wrong;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  CHECK(wrong == 0);
}

namespace {

constexpr int64_t kMiBFloats = int64_t{1} << 18;  // floats per MiB

char* Address(const torch::Tensor& t) { return static_cast<char*>(t.data_ptr()); }

}  // namespace

TEST_CASE("a freed large block is split for smaller tensors and merged again", "[memory]") {
  rl::model::UseHugePagesForLargeTensors();
  rl::model::ReleaseCachedBlocks();
  char* first = nullptr;
  {
    torch::Tensor big = torch::empty({12 * kMiBFloats});
    first = Address(big);
  }
  torch::Tensor a = torch::ones({4 * kMiBFloats});  // the head of the freed 12 MiB
  torch::Tensor b = torch::ones({6 * kMiBFloats});  // what follows it
  CHECK(Address(a) == first);
  CHECK(Address(b) == first + (4 << 20));
  CHECK(rl::model::LargeBlocks().cached_bytes == size_t{2} << 20);  // the 2 MiB tail
  a = torch::Tensor();
  b = torch::Tensor();
  CHECK(rl::model::LargeBlocks().cached_bytes == size_t{12} << 20);  // merged back whole
  torch::Tensor whole = torch::full({12 * kMiBFloats}, 3.0f);
  CHECK(Address(whole) == first);
  CHECK(whole.sum().item<double>() == 3.0 * 12 * kMiBFloats);
}

TEST_CASE("the cache keeps only what the peak of blocks in use has room for", "[memory]") {
  rl::model::UseHugePagesForLargeTensors();
  rl::model::ReleaseCachedBlocks();
  const size_t before = rl::model::LargeBlocks().live_bytes;  // other tests' tensors
  constexpr size_t kMiB = size_t{1} << 20;
  {
    torch::Tensor x = torch::empty({8 * kMiBFloats});
    torch::Tensor y = torch::empty({8 * kMiBFloats});
  }
  rl::model::LargeBlockStats s = rl::model::LargeBlocks();
  CHECK(s.peak_live_bytes - before == 16 * kMiB);
  CHECK(s.cached_bytes == 16 * kMiB);  // within the peak: kept
  {
    // Larger than any cached block: it is mapped anew, and as much cache goes back as the
    // peak has no room for (24 live + 16 cached > a peak of 24).
    torch::Tensor z = torch::empty({24 * kMiBFloats});
    s = rl::model::LargeBlocks();
    CHECK(s.peak_live_bytes - before == 24 * kMiB);
    CHECK(s.live_bytes + s.cached_bytes == s.peak_live_bytes);
  }
  CHECK(rl::model::LargeBlocks().cached_bytes == 24 * kMiB);
  rl::model::ReleaseCachedBlocks();
  s = rl::model::LargeBlocks();
  CHECK(s.cached_bytes == 0);
  CHECK(s.peak_live_bytes == s.live_bytes);
}
