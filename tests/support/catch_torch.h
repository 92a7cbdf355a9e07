// tests/support/catch_torch.h: Catch2 for tests that also use LibTorch.
//
// Debian's LibTorch is built with glog, whose CHECK macro (pulled in by c10's logging header)
// clashes with Catch2's. This header includes c10's logging first — its include guard keeps
// any later LibTorch header from defining CHECK again — then drops glog's macro and brings in
// Catch2. Tests that use LibTorch include this instead of <catch2/catch.hpp>.
#pragma once

#include <c10/util/Logging.h>
#undef CHECK
#include <catch2/catch.hpp>
