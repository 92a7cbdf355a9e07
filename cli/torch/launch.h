// cli/torch/launch.h: `rl train --nproc N`, N local ranks started as torchrun starts them.
//
//   int status = rl::cli::LaunchLocalRanks(2, {"train", "configs/run.yaml"});  // waits for all
//
// Each rank is this program (/proc/self/exe) run with `args` and, in its environment, RANK,
// LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, and the rendezvous store the launcher serves
// (c10d's TCPStore, on a port the system picks): MASTER_ADDR=127.0.0.1, MASTER_PORT and
// TORCHELASTIC_USE_AGENT_STORE=True, as torchrun's agent serves its workers.
// Returns 0 when every rank exits 0; else the status of the first rank that failed (128 +
// the signal when a signal ended it), once the others are stopped (SIGTERM, then SIGKILL
// after 10 s). A rank dies with its launcher (PR_SET_PDEATHSIG): none outlives it.
// Thread safety: call from the main thread, once; it forks.
#pragma once

#include <string>
#include <vector>

namespace rl::cli {

int LaunchLocalRanks(int nproc, const std::vector<std::string>& args);

}  // namespace rl::cli
