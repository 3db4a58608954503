#include "core/command_runner.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "core/unique_fd.h"

extern char** environ;

namespace vdswap {

namespace {

std::string Tail(const std::string& s, size_t n) {
  return s.size() <= n ? s : "..." + s.substr(s.size() - n);
}

// Trims trailing newlines so error messages stay on one line.
std::string Chomp(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

// The three standard streams of a child: its ends and ours.
struct ChildPipes {
  UniqueFd in_r, in_w, out_r, out_w, err_r, err_w;
};

Result<ChildPipes> MakePipes() {
  ChildPipes p;
  for (auto [r, w] : {std::pair{&p.in_r, &p.in_w}, std::pair{&p.out_r, &p.out_w},
                      std::pair{&p.err_r, &p.err_w}}) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) return Internal("pipe: " + std::string(strerror(errno)));
    r->reset(fds[0]);
    w->reset(fds[1]);
  }
  return p;
}

// Starts argv[0] (looked up in PATH) in its own process group, so that a timeout kills
// the program and whatever it started, on `pipes`; then closes the child's ends.
Result<pid_t> Spawn(const std::vector<std::string>& argv, ChildPipes& pipes) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, pipes.in_r.get(), 0);
  posix_spawn_file_actions_adddup2(&actions, pipes.out_w.get(), 1);
  posix_spawn_file_actions_adddup2(&actions, pipes.err_w.get(), 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK);
  posix_spawnattr_setpgroup(&attr, 0);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  int rc = posix_spawnp(&pid, args[0], &actions, &attr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) return Unavailable("cannot run " + argv[0] + ": " + strerror(rc));
  pipes.in_r.reset();
  pipes.out_w.reset();
  pipes.err_w.reset();
  return pid;
}

// How an exchange with a child ended.
enum class Ended { kClosed, kTimedOut, kTooMuchOutput };

// Feeds options.stdin_data to the child and collects its stdout and stderr into `out`
// until all three streams are closed, options.max_output is passed, or `deadline` is.
Ended Exchange(ChildPipes& pipes, const RunOptions& options,
               std::chrono::steady_clock::time_point deadline, CommandOutput* out) {
  const std::string& stdin_data = options.stdin_data;
  size_t written = 0;
  if (stdin_data.empty()) pipes.in_w.reset();
  while (pipes.out_r.valid() || pipes.err_r.valid() || pipes.in_w.valid()) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return Ended::kTimedOut;
    pollfd fds[3];
    int n = 0;
    if (pipes.out_r.valid()) fds[n++] = {pipes.out_r.get(), POLLIN, 0};
    if (pipes.err_r.valid()) fds[n++] = {pipes.err_r.get(), POLLIN, 0};
    if (pipes.in_w.valid()) fds[n++] = {pipes.in_w.get(), POLLOUT, 0};
    int pr = poll(fds, n, static_cast<int>(std::min<int64_t>(left.count(), 1000)));
    if (pr < 0 && errno != EINTR) return Ended::kClosed;
    for (int i = 0; i < n && pr > 0; ++i) {
      if (fds[i].revents == 0) continue;
      if (fds[i].fd == pipes.in_w.get()) {
        ssize_t w =
            write(pipes.in_w.get(), stdin_data.data() + written, stdin_data.size() - written);
        if (w > 0) written += static_cast<size_t>(w);
        if (w < 0 || written == stdin_data.size()) pipes.in_w.reset();
        continue;
      }
      char buf[65536];
      ssize_t r = read(fds[i].fd, buf, sizeof buf);
      bool is_out = fds[i].fd == pipes.out_r.get();
      if (r > 0) {
        (is_out ? out->out : out->err).append(buf, static_cast<size_t>(r));
        if (out->out.size() + out->err.size() > options.max_output) return Ended::kTooMuchOutput;
      } else if (r == 0 || errno != EINTR) {
        (is_out ? pipes.out_r : pipes.err_r).reset();
      }
    }
  }
  return Ended::kClosed;
}

}  // namespace

Result<CommandOutput> CommandRunner::RunOk(const std::vector<std::string>& argv,
                                           const RunOptions& options) {
  ASSIGN_OR_RETURN(CommandOutput out, Run(argv, options));
  if (out.exit_code != 0) {
    return Internal(argv[0] + " exited with status " + std::to_string(out.exit_code) + ": " +
                    Chomp(Tail(out.err.empty() ? out.out : out.err, 2000)));
  }
  return out;
}

Result<CommandOutput> SubprocessRunner::Run(const std::vector<std::string>& argv,
                                            const RunOptions& options) {
  assert(!argv.empty());
  ASSIGN_OR_RETURN(ChildPipes pipes, MakePipes());
  ASSIGN_OR_RETURN(pid_t pid, Spawn(argv, pipes));
  CommandOutput result;
  const Ended ended =
      Exchange(pipes, options, std::chrono::steady_clock::now() + options.timeout, &result);
  if (ended != Ended::kClosed) kill(-pid, SIGKILL);
  int wstatus = 0;
  while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
  }
  if (ended == Ended::kTimedOut) {
    return Unavailable(argv[0] + " timed out after " + std::to_string(options.timeout.count()) +
                       " ms");
  }
  if (ended == Ended::kTooMuchOutput) {
    return InvalidArgument(argv[0] + " wrote more than " + std::to_string(options.max_output) +
                           " bytes of output; stopped");
  }
  result.exit_code = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
  return result;
}

}  // namespace vdswap
