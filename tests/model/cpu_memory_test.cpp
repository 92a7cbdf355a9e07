// rl/model/cpu_memory.h: large CPU tensors on 2 MiB-aligned blocks, a freed block serving the
// next tensor of its size.
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
