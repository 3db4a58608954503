// vdswapd: owns the state of a vdswap installation and serves its HTTP API.
// This is the composition root: the only place that knows which Hypervisor is real.
#include <signal.h>
#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <optional>
#include <thread>

#include "api/host_routes.h"
#include "api/http_server.h"
#include "api/image_routes.h"
#include "api/metrics.h"
#include "api/rollout_routes.h"
#include "api/router.h"
#include "api/status_routes.h"
#include "api/template_routes.h"
#include "api/token_auth.h"
#include "api/vm_routes.h"
#include "assembly/fleet.h"
#include "core/clock.h"
#include "core/command_runner.h"
#include "core/dir_lock.h"
#include "core/log.h"
#include "core/version.h"
#include "fake/fake_hypervisor.h"
#include "libvirt/libvirt_hypervisor.h"
#include "store/db.h"

namespace vdswap {
namespace {

struct Flags {
  std::string state_dir = "/var/lib/vdswap";
  std::string socket;
  std::string listen;
  std::string token_file;
  std::string hypervisor = "libvirt";
  std::string accel = "auto";
  std::string uri = "qemu:///system";
  std::string log_level = "info";
  int64_t fake_latency_ms = -1;
  bool insecure_http = false;
  std::string swap_order = "make-before-break";
};

Result<std::pair<std::string, int>> ParseListen(const std::string& spec) {
  auto colon = spec.rfind(':');
  int port = 0;
  if (colon == std::string::npos) return InvalidArgument("--listen must be ADDR:PORT");
  try {
    port = std::stoi(spec.substr(colon + 1));
  } catch (const std::exception&) {
    return InvalidArgument("--listen port in '" + spec + "' is not a number");
  }
  if (port <= 0 || port > 65535) return InvalidArgument("--listen port out of range");
  return std::make_pair(spec.substr(0, colon), port);
}

// 127.0.0.0/8, ::1 or localhost: traffic that stays on this machine.
bool IsLoopback(const std::string& address) {
  return address == "localhost" || address == "::1" || address == "[::1]" ||
         address.rfind("127.", 0) == 0;
}

// The state dir holds the database, the images and the socket: at most 0750 (the socket's
// group may enter it to reach the socket). Permissions are only ever taken away, with a
// warning saying so; a world-writable dir is refused, since anyone could have put files
// in it.
Status RestrictStateDir(const std::string& dir, bool created) {
  struct stat st {};
  if (stat(dir.c_str(), &st) != 0) {
    return InvalidArgument("cannot read state dir '" + dir + "': " + strerror(errno));
  }
  const mode_t mode = st.st_mode & 07777;
  auto octal = [](mode_t m) {
    char buf[8];
    snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(m));
    return std::string(buf);
  };
  if ((mode & S_IWOTH) != 0) {
    return InvalidArgument("state dir '" + dir + "' is writable by everyone (mode " + octal(mode) +
                           "); make it 0750 (chmod 750 " + dir + ") and check its contents");
  }
  const mode_t want = mode & 0750;
  if (want == mode) return Status::Ok();
  if (chmod(dir.c_str(), want) != 0) {
    return InvalidArgument("cannot set the mode of state dir '" + dir + "': " + strerror(errno));
  }
  if (!created) {
    VLOG(kWarning) << "state dir " << dir << " had mode " << octal(mode) << "; set it to "
                   << octal(want) << " (no access for others, no group write)";
  }
  return Status::Ok();
}

// What the flags say, checked: where to listen besides the unix socket, and how.
struct Checked {
  std::optional<std::pair<std::string, int>> tcp;
  std::optional<TokenAuth> auth;
  Accel accel = Accel::kTcg;
};

// Checks every flag before anything is opened or served: a refused start must not answer
// on its socket, even for a moment. Prints why and returns the exit code (2) on a bad flag.
std::optional<int> CheckFlags(const Flags& flags, Checked* out) {
  auto refuse = [](const std::string& why) {
    std::cerr << "vdswapd: " << why << "\n";
    return 2;
  };
  LogLevel level;
  if (!ParseLogLevel(flags.log_level, &level)) {
    return refuse("--log-level must be debug, info, warning or error");
  }
  SetLogLevel(level);
  if (!flags.listen.empty()) {
    auto addr = ParseListen(flags.listen);
    if (!addr.ok()) return refuse(addr.status().message());
    if (flags.token_file.empty()) {
      return refuse("--listen requires --token-file (the API is never open on TCP)");
    }
    auto loaded = TokenAuth::FromFile(flags.token_file);
    if (!loaded.ok()) return refuse(loaded.status().message());
    if (!IsLoopback(addr->first) && !flags.insecure_http) {
      return refuse("--listen " + flags.listen +
                    " would send the token and all traffic in clear beyond this machine: listen "
                    "on 127.0.0.1 (reach it through an SSH tunnel), or pass --insecure-http");
    }
    if (!IsLoopback(addr->first)) {
      VLOG(kWarning) << "--insecure-http: the API token and all traffic on " << flags.listen
                     << " travel in clear";
    }
    out->tcp = *addr;
    out->auth.emplace(std::move(*loaded));
  }
  if (flags.fake_latency_ms >= 0 && flags.hypervisor != "fake") {
    return refuse("--fake-latency needs --hypervisor fake");
  }
  if (flags.hypervisor != "fake") {
    auto resolved = ResolveAccel(flags.accel);
    if (!resolved.ok()) return refuse(resolved.status().message());
    out->accel = *resolved;
  }
  return std::nullopt;
}

// Creates the state dir (or takes permissions away from it) and locks it: one daemon per
// state dir, since a second one would take over the socket and could collect the first
// one's images. Prints why and returns the exit code when it cannot.
std::optional<int> PrepareStateDir(const std::string& dir, std::optional<DirLock>* lock) {
  std::error_code ec;
  const bool created = std::filesystem::create_directories(dir, ec);
  if (ec) {
    std::cerr << "vdswapd: cannot create state dir '" << dir << "': " << ec.message() << "\n";
    return 1;
  }
  if (Status s = RestrictStateDir(dir, created); !s.ok()) {
    std::cerr << "vdswapd: " << s.message() << "\n";
    return 2;
  }
  auto acquired = DirLock::Acquire(dir, "vdswapd.lock");
  if (!acquired.ok()) {
    std::cerr << "vdswapd: state dir " << acquired.status().message() << "\n";
    return 4;
  }
  lock->emplace(std::move(*acquired));
  return std::nullopt;
}

std::unique_ptr<Hypervisor> MakeHypervisor(const Flags& flags, Accel accel, Clock& clock) {
  if (flags.hypervisor != "fake") {
    VLOG(kInfo) << "new VMs use " << (accel == Accel::kKvm ? "KVM" : "TCG (software)");
    return std::make_unique<LibvirtHypervisor>(accel);
  }
  auto fake = std::make_unique<FakeHypervisor>(clock);
  if (flags.fake_latency_ms > 0) {
    using Op = FakeHypervisor::Op;
    for (Op op : {Op::kUpload, Op::kCreateVolume, Op::kDefineAndStart, Op::kStart, Op::kShutdown,
                  Op::kDetach, Op::kAttach, Op::kOpenAgent, Op::kAppStop, Op::kAppStart}) {
      fake->SetLatency(op, std::chrono::milliseconds(flags.fake_latency_ms));
    }
  }
  return fake;
}

// Settles what a previous run left half-done before anything new starts: staging of
// interrupted image builds, VMs left in state creating.
void SettleInterrupted(Fleet& fleet) {
  if (auto gc = fleet.images.Gc(/*unused=*/false); !gc.ok()) {
    VLOG(kWarning) << "image gc: " << gc.status().message();
  }
  if (auto settled = fleet.vms.ReconcileCreating(); !settled.ok()) {
    VLOG(kWarning) << "vms left in state creating: " << settled.status().message();
  }
}

void RegisterRoutes(Router& router, Metrics& metrics, Db& db, Fleet& fleet, CommandRunner& runner,
                    Clock& clock, const DaemonInfo& info) {
  RegisterStatusRoutes(router, metrics, db,
                       {fleet.hosts, fleet.host_images, fleet.images, fleet.templates,
                        fleet.vm_table, fleet.rollout_store},
                       info);
  RegisterImageRoutes(router, fleet.images, runner, clock);
  RegisterHostRoutes(router, fleet.hosts, fleet.host_images, fleet.vm_table);
  RegisterTemplateRoutes(router, fleet.templates);
  RegisterVmRoutes(router, fleet.vms, fleet.vm_table);
  RegisterRolloutRoutes(router, fleet.rollouts);
}

// Serves until SIGTERM or SIGINT (blocked in every thread by the caller); swaps and
// rollouts a previous run left unfinished continue in the background meanwhile.
int Serve(const Flags& flags, Checked& checked, HttpServer& server, RolloutEngine& rollouts,
          const sigset_t& stop_signals) {
  std::string socket = flags.socket.empty() ? flags.state_dir + "/vdswapd.sock" : flags.socket;
  if (Status s = server.ListenUnix(socket); !s.ok()) {
    std::cerr << "vdswapd: " << s.message() << "\n";
    return 1;
  }
  if (checked.tcp) {
    Status s = server.ListenTcp(checked.tcp->first, checked.tcp->second, std::move(*checked.auth));
    if (!s.ok()) {
      std::cerr << "vdswapd: " << s.message() << "\n";
      return 1;
    }
  }
  VLOG(kInfo) << "vdswapd " << kVersion << " serving unix:" << socket
              << (flags.listen.empty() ? "" : " and tcp:" + flags.listen) << " (state dir "
              << flags.state_dir << ", hypervisor " << flags.hypervisor << ")";
  std::thread resume([&rollouts] {
    if (Status s = rollouts.ResumeAll(); !s.ok()) VLOG(kWarning) << "resume: " << s.message();
  });
  int sig = 0;
  sigwait(&stop_signals, &sig);
  VLOG(kInfo) << "signal " << sig << ": shutting down";
  // Rollouts start no further swap (in-flight ones finish; they keep their state and
  // resume at the next start), which also ends `--watch` streams and `?wait`s. Then the
  // server cancels every request in flight (a `vm create` stops after the VMs it has
  // started) and waits for their handlers.
  rollouts.Shutdown();
  server.Stop();
  resume.join();
  return 0;
}

int Run(const Flags& flags) {
  Checked checked;
  if (auto refused = CheckFlags(flags, &checked)) return *refused;
  std::optional<DirLock> state_lock;  // held until the process exits
  if (auto failed = PrepareStateDir(flags.state_dir, &state_lock)) return *failed;

  // Block the signals we wait for before any thread starts, so every thread inherits it.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  auto db = Db::Open(flags.state_dir + "/vdswap.db");
  if (!db.ok()) {
    std::cerr << "vdswapd: " << db.status().message() << "\n";
    return 1;
  }
  SystemClock clock;
  SubprocessRunner runner;
  std::unique_ptr<Hypervisor> hypervisor = MakeHypervisor(flags, checked.accel, clock);
  Swapper::Options swap;
  swap.order = *SwapOrderFromName(flags.swap_order);  // checked by the parser
  // Declared before the fleet, which reports to them until its engine is gone.
  Metrics metrics;
  RolloutMetrics rollout_metrics(metrics, swap.order);
  Fleet fleet(**db, *hypervisor, clock, {flags.state_dir, flags.uri, swap});
  fleet.rollouts.Observe(&rollout_metrics);
  SettleInterrupted(fleet);

  Router router;
  RegisterRoutes(router, metrics, **db, fleet, runner, clock,
                 {flags.state_dir, flags.hypervisor, flags.uri, std::chrono::steady_clock::now()});
  HttpServer server(router, metrics);
  return Serve(flags, checked, server, fleet.rollouts, stop_signals);
}

}  // namespace
}  // namespace vdswap

int main(int argc, char** argv) {
  vdswap::Flags flags;
  CLI::App app{
      "vdswapd: the vdswap daemon. Owns the fleet's state (SQLite in --state-dir) and serves\n"
      "the HTTP/JSON API that the `vdswap` CLI talks to, on a unix socket and optionally on\n"
      "TCP with a bearer token. Stop it with SIGTERM."};
  app.set_version_flag("--version", vdswap::kVersion);
  app.add_option("--state-dir", flags.state_dir, "Directory for the database, images and socket")
      ->capture_default_str();
  app.add_option("--socket", flags.socket, "Unix socket path (default STATE_DIR/vdswapd.sock)");
  app.add_option("--listen", flags.listen, "Also serve TCP on ADDR:PORT (needs --token-file)");
  app.add_option("--token-file", flags.token_file,
                 "File (mode 0600) holding the bearer token for --listen, at least 32 bytes");
  app.add_flag("--insecure-http", flags.insecure_http,
               "Allow --listen on a non-loopback address over plain HTTP (the token travels in "
               "clear)");
  app.add_option("--hypervisor", flags.hypervisor, "libvirt, or fake for demos and scale tests")
      ->check(CLI::IsMember({"libvirt", "fake"}))
      ->capture_default_str();
  app.add_option("--accel", flags.accel, "auto, kvm or tcg (QEMU accelerator for new VMs)")
      ->check(CLI::IsMember({"auto", "kvm", "tcg"}))
      ->capture_default_str();
  app.add_option("--swap-order", flags.swap_order,
                 "Default order of app hot swaps (a rollout's --swap-order overrides it): "
                 "make-before-break (the new app disk beside the old one, the old one unplugged "
                 "once the new app is healthy) or break-before-make (for guests that cannot "
                 "hold two app disks)")
      ->check(CLI::IsMember({"make-before-break", "break-before-make"}))
      ->capture_default_str();
  app.add_option("--uri", flags.uri, "libvirt URI of the default host")->capture_default_str();
  app.add_option("--fake-latency", flags.fake_latency_ms,
                 "With --hypervisor fake: every hypervisor and agent call takes MS milliseconds")
      ->check(CLI::Range(int64_t{0}, int64_t{600'000}));
  app.add_option("--log-level", flags.log_level, "debug, info, warning or error")
      ->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  return vdswap::Run(flags);
}
