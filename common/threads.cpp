#include "common/threads.h"

#include <algorithm>
#include <thread>

namespace rl::common {

int ThreadCount(int64_t requested) {
  if (requested > 0) return static_cast<int>(requested);
  // hardware_concurrency may answer 0 when it cannot tell.
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

}  // namespace rl::common
