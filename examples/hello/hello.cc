// hello: the sample app of vdswap's tests and demo.
//   hello          counts its start in $VDSWAP_DATA/starts, then runs until SIGTERM
//   hello --check  prints "hello <version> starts=<N>"; exits 0, or 1 in the broken build
//   While running it answers every TCP/unix connection with "hello <version> starts=<N>\n"
//   on a socket passed by systemd's socket activation (LISTEN_FDS=1, LISTEN_PID=its pid,
//   fd 3: the agent's held socket) or, with `--port N`, on 0.0.0.0:N of its own; with
//   neither it serves nothing.
// HELLO_VERSION, HELLO_HEALTHY and HELLO_SLOW_MS are set at compile time. The check passes
// only once a live `hello` has counted its start (its pid is in /tmp/hello.pid), so a check
// never sees the previous run's counter. A slow build (HELLO_SLOW_MS > 0) publishes its pid
// HELLO_SLOW_MS after counting its start, and takes as long to exit after SIGTERM: crash
// tests use it to hold a swap in its start or stop step.
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

namespace {

volatile sig_atomic_t g_stop = 0;

constexpr char kPidFile[] = "/tmp/hello.pid";

bool Running() {
  std::ifstream in(kPidFile);
  long pid = 0;
  return (in >> pid) && pid > 0 && kill(static_cast<pid_t>(pid), 0) == 0;
}

#ifndef HELLO_SLOW_MS
#define HELLO_SLOW_MS 0
#endif

// Sleeps `ms` in full, through signals.
void SleepMs(long ms) {
  timespec left{ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&left, &left) != 0) {
  }
}

std::string CounterPath() {
  const char* dir = std::getenv("VDSWAP_DATA");
  return std::string(dir ? dir : ".") + "/starts";
}

long ReadStarts() {
  std::ifstream in(CounterPath());
  long n = 0;
  in >> n;
  return n;
}

// The listening socket to serve on: fd 3 when passed to this process by socket
// activation, else 0.0.0.0:`port` when port > 0, else -1.
int ListenFd(int port) {
  const char* fds = std::getenv("LISTEN_FDS");
  const char* pid = std::getenv("LISTEN_PID");
  if (fds != nullptr && pid != nullptr && std::atol(pid) == getpid() && std::atoi(fds) >= 1) {
    return 3;
  }
  if (port <= 0) return -1;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(fd, 128) != 0) {
    std::fprintf(stderr, "hello: cannot listen on port %d\n", port);
    return -1;
  }
  return fd;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::strcmp(argv[1], "--check") == 0) {
    if (!Running()) {
      std::printf("hello %s not running\n", HELLO_VERSION);
      return 1;
    }
    std::printf("hello %s starts=%ld\n", HELLO_VERSION, ReadStarts());
    return HELLO_HEALTHY ? 0 : 1;
  }
  int port = 0;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--port") == 0) port = std::atoi(argv[i + 1]);
  }
  long starts = ReadStarts() + 1;
  // Durable before it counts: write a temporary file, fsync it, rename it over the counter.
  std::string tmp = CounterPath() + ".tmp";
  std::string text = std::to_string(starts) + "\n";
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0 || write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size()) ||
      fsync(fd) != 0 || close(fd) != 0 || std::rename(tmp.c_str(), CounterPath().c_str()) != 0) {
    std::fprintf(stderr, "hello: cannot write %s\n", CounterPath().c_str());
    return 1;
  }
  struct sigaction sa {};
  sa.sa_handler = [](int) { g_stop = 1; };
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  if (HELLO_SLOW_MS > 0) {
    unlink(kPidFile);  // a stale pid (perhaps reused) must not pass the check meanwhile
    std::fprintf(stderr, "hello %s: start %ld, healthy in %d ms\n", HELLO_VERSION, starts,
                 HELLO_SLOW_MS);
    SleepMs(HELLO_SLOW_MS);
  }
  std::ofstream(kPidFile) << getpid() << "\n";
  std::fprintf(stderr, "hello %s: start %ld\n", HELLO_VERSION, starts);
  int listen_fd = ListenFd(port);
  std::string line =
      "hello " + std::string(HELLO_VERSION) + " starts=" + std::to_string(starts) + "\n";
  while (!g_stop) {
    if (listen_fd < 0) {
      pause();
      continue;
    }
    int c = accept(listen_fd, nullptr, nullptr);  // SIGTERM interrupts it (no SA_RESTART)
    if (c < 0) continue;
    if (write(c, line.data(), line.size()) < 0) std::fprintf(stderr, "hello: write failed\n");
    close(c);
  }
  std::fprintf(stderr, "hello %s: stopping\n", HELLO_VERSION);
  if (HELLO_SLOW_MS > 0) SleepMs(HELLO_SLOW_MS);
  return 0;
}
