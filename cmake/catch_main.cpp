// The one translation unit that carries Catch2's main for every test executable.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include "common/blas_kernels.h"

int main(int argc, char** argv) {
  // The tests that run LibTorch's float32 products run them on the kernels `rl` uses.
  rl::common::RestartForBlasKernels(argv);
  return Catch::Session().run(argc, argv);
}
