// tests/fuzz/fuzz_input.h: how a fuzz target cuts one libFuzzer input into its arguments, and
// how it reports a broken promise.
//
// Every target that needs more than one string reads them the same way, so that seeds stay
// readable text written with printf:
//   - Byte(): the first byte, a selector (which spec, which options); targets take it modulo
//     their number of variants, so the seed prefixes '0', '1', '2' pick variants 0, 1, 2;
//   - Next(): the bytes up to the next NUL, consumed with it;
//   - Rest(): everything left, NUL bytes included (the field that most deserves them).
//
//   printf '0%s\0%s' '\frac{1}{2}' '<answer>0.5</answer>' > tests/fuzz/corpus/verify_fuzz/half
//
// Next() and Rest() return nullopt once the input is used up, so "a" has one field and "a\0"
// two (the second empty): a trailing field can be absent or present but empty.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string_view>
#include <utility>

namespace rl::fuzz {

class FuzzInput {
 public:
  FuzzInput(const uint8_t* data, size_t size)
      : rest_(reinterpret_cast<const char*>(data), size) {}

  // The next byte, or 0 when the input is used up.
  uint8_t Byte() {
    if (rest_.empty()) {
      done_ = true;
      return 0;
    }
    const auto byte = static_cast<uint8_t>(rest_.front());
    rest_.remove_prefix(1);
    return byte;
  }

  // The bytes up to the next NUL; everything left when there is none; nullopt when the
  // previous field ended the input.
  std::optional<std::string_view> Next() {
    if (done_) return std::nullopt;
    const size_t nul = rest_.find('\0');
    if (nul == std::string_view::npos) {
      done_ = true;
      return std::exchange(rest_, {});
    }
    const std::string_view field = rest_.substr(0, nul);
    rest_.remove_prefix(nul + 1);
    return field;
  }

  // Everything left (possibly empty), NUL bytes included; nullopt when the previous field
  // ended the input.
  std::optional<std::string_view> Rest() {
    if (done_) return std::nullopt;
    done_ = true;
    return std::exchange(rest_, {});
  }

 private:
  std::string_view rest_;
  bool done_ = false;
};

// A promise of the code under test (a header's contract): when broken, says which and aborts,
// and libFuzzer saves the input that broke it.
inline void Require(bool kept, const char* promise) {
  if (kept) return;
  std::fprintf(stderr, "fuzz: broken promise: %s\n", promise);
  std::abort();
}

}  // namespace rl::fuzz
