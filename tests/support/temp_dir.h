// tests/support/temp_dir.h: a fresh directory under the system temp dir, removed with
// everything in it at scope exit; unique per process and per instance, so tests may run in
// parallel.
//
//   rl::testing::TempDir dir;
//   std::ofstream(dir / "config.json") << "{}";
//   Run(dir.str());
#pragma once

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <string>

namespace rl::testing {

class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    path_ = std::filesystem::temp_directory_path() /
            ("rl_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }
  std::string str() const { return path_.string(); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace rl::testing
