// tests/support/process.h: running a program from a test and keeping what it printed.
//
//   rl::testing::ProcessResult r = rl::testing::RunProcess("'" RL_BINARY "' score --help");
//   CHECK(r.exit_code == 0);  CHECK_THAT(r.out, Contains("--rewards"));
//
// The command runs through /bin/sh, so quoting and redirections are the shell's; standard
// error is captured separately (through a temporary file) unless the command redirects it.
#pragma once

#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

namespace rl::testing {

struct ProcessResult {
  int exit_code = -1;  // -1 when a signal ended the process
  std::string out;     // standard output
  std::string err;     // standard error
};

inline ProcessResult RunProcess(const std::string& command) {
  char err_path[] = "/tmp/rl_test_stderr_XXXXXX";
  const int fd = mkstemp(err_path);
  if (fd < 0) throw std::runtime_error("RunProcess: cannot create a temporary file");
  close(fd);
  ProcessResult result;
  FILE* pipe = popen(("( " + command + " ) 2> '" + err_path + "'").c_str(), "r");
  if (pipe == nullptr) throw std::runtime_error("RunProcess: cannot start: " + command);
  char buffer[4096];
  for (size_t n; (n = fread(buffer, 1, sizeof(buffer), pipe)) > 0;) result.out.append(buffer, n);
  const int status = pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ostringstream err;
  err << std::ifstream(err_path, std::ios::binary).rdbuf();
  result.err = err.str();
  unlink(err_path);
  return result;
}

}  // namespace rl::testing
