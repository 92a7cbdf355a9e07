#include "common/blas_kernels.h"

#include <dlfcn.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace rl::common {
namespace {

constexpr const char* kVariable = "OPENBLAS_CORETYPE";

// OpenBLAS's own report of its choice, looked up rather than linked: the programs that load
// OpenBLAS do so through LibTorch, and the others must not need it.
const char* OpenBlasCoreName() {
  using CoreName = char* (*)();
  const auto core_name = reinterpret_cast<CoreName>(dlsym(RTLD_DEFAULT, "openblas_get_corename"));
  return core_name != nullptr ? core_name() : nullptr;
}

}  // namespace

std::string BetterBlasKernels(std::string_view chosen, CpuVectorUnits cpu) {
  // OpenBLAS's names for kernels older than AVX2; "Prescott" is its choice for unknown CPUs.
  constexpr std::array<std::string_view, 7> kBeforeAvx2 = {"Prescott", "Core2",       "Penryn", "Dunnington",
                                                           "Nehalem",  "Sandybridge", "Atom"};
  const bool old = std::find(kBeforeAvx2.begin(), kBeforeAvx2.end(), chosen) != kBeforeAvx2.end();
  if (!old || !cpu.avx2_fma) return "";
  return cpu.avx512 ? "SkylakeX" : "Haswell";
}

CpuVectorUnits DetectCpuVectorUnits() {
  CpuVectorUnits cpu;
#if defined(__x86_64__)
  __builtin_cpu_init();  // the checks below include the OS's support for the wider registers
  cpu.avx2_fma = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  cpu.avx512 = cpu.avx2_fma && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd") &&
               __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
               __builtin_cpu_supports("avx512vl");
#endif
  return cpu;
}

std::string BlasKernels() {
  const char* name = OpenBlasCoreName();
  return name != nullptr ? name : "";
}

void RestartForBlasKernels(char** argv) {
  if (std::getenv(kVariable) != nullptr) return;  // the user's choice, or this process's restart
  const std::string better = BetterBlasKernels(BlasKernels(), DetectCpuVectorUnits());
  if (better.empty()) return;
  setenv(kVariable, better.c_str(), /*overwrite=*/0);
  execv("/proc/self/exe", argv);
  // Still here: the restart failed. Go on with the slow kernels rather than fail the program.
  std::fprintf(stderr, "warning: could not restart with %s=%s for OpenBLAS's faster kernels: %s\n", kVariable,
               better.c_str(), std::strerror(errno));
  unsetenv(kVariable);
}

}  // namespace rl::common
