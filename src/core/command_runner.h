#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "core/status.h"

namespace vdswap {

struct RunOptions {
  std::chrono::milliseconds timeout{std::chrono::minutes(10)};
  std::string stdin_data;  // written to the child's stdin, then closed
  // The most stdout and stderr together that is kept: past it the child is killed (its
  // input may be hostile, e.g. an image's sparse 100 GiB /etc/os-release).
  size_t max_output = size_t{64} << 20;
};

struct CommandOutput {
  int exit_code = 0;  // the child's exit status, or 128+signal when it was killed
  std::string out;
  std::string err;
};

// Runs external programs (mkfs.erofs, qemu-img, ...): argv only, never a shell.
// The seam for tests: fakes record the argv they were given.
class CommandRunner {
 public:
  virtual ~CommandRunner() = default;

  // Runs argv[0] (looked up in PATH) to completion and returns its output whatever its
  // exit code. kUnavailable when it cannot be started or runs past options.timeout;
  // kInvalidArgument when it writes more than options.max_output (either way it is then
  // killed with its process group). REQUIRES: !argv.empty()
  virtual Result<CommandOutput> Run(const std::vector<std::string>& argv,
                                    const RunOptions& options) = 0;

  // Like Run, but a non-zero exit is kInternal naming the program and its stderr.
  Result<CommandOutput> RunOk(const std::vector<std::string>& argv, const RunOptions& options = {});
};

// The real runner: posix_spawn + pipes + poll. Thread-safe.
class SubprocessRunner : public CommandRunner {
 public:
  Result<CommandOutput> Run(const std::vector<std::string>& argv,
                            const RunOptions& options) override;
};

}  // namespace vdswap
