// common/threads.h: how many threads a setting asks for.
//
// Every `threads` setting in the project (run.threads, rewards.threads, rl serve's
// score_threads, rl score --threads, rl generate --threads) reads 0 as "all cores".
#pragma once

#include <cstdint>

namespace rl::common {

// `requested` when positive, else the hardware's thread count (at least 1).
int ThreadCount(int64_t requested);

}  // namespace rl::common
