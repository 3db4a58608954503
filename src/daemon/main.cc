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
#include "core/clock.h"
#include "core/command_runner.h"
#include "core/dir_lock.h"
#include "core/log.h"
#include "core/version.h"
#include "fake/fake_hypervisor.h"
#include "fleet/disk_planner.h"
#include "fleet/guest_agent.h"
#include "fleet/host_images.h"
#include "fleet/host_registry.h"
#include "fleet/image_distributor.h"
#include "fleet/swap_journal.h"
#include "fleet/swapper.h"
#include "fleet/template_store.h"
#include "fleet/vm_locks.h"
#include "fleet/vm_service.h"
#include "fleet/vm_table.h"
#include "image/image_store.h"
#include "libvirt/libvirt_hypervisor.h"
#include "rollout/rollout_engine.h"
#include "rollout/rollout_store.h"
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

int Run(const Flags& flags) {
  LogLevel level;
  if (!ParseLogLevel(flags.log_level, &level)) {
    std::cerr << "vdswapd: --log-level must be debug, info, warning or error\n";
    return 2;
  }
  SetLogLevel(level);
  // Every flag is checked before anything is opened or served: a refused start must not
  // answer on its socket, even for a moment.
  std::optional<std::pair<std::string, int>> tcp;
  std::optional<TokenAuth> auth;
  if (!flags.listen.empty()) {
    auto addr = ParseListen(flags.listen);
    if (!addr.ok()) {
      std::cerr << "vdswapd: " << addr.status().message() << "\n";
      return 2;
    }
    if (flags.token_file.empty()) {
      std::cerr << "vdswapd: --listen requires --token-file (the API is never open on TCP)\n";
      return 2;
    }
    auto loaded = TokenAuth::FromFile(flags.token_file);
    if (!loaded.ok()) {
      std::cerr << "vdswapd: " << loaded.status().message() << "\n";
      return 2;
    }
    tcp = *addr;
    auth.emplace(std::move(*loaded));
  }
  if (flags.fake_latency_ms >= 0 && flags.hypervisor != "fake") {
    std::cerr << "vdswapd: --fake-latency needs --hypervisor fake\n";
    return 2;
  }
  Accel accel = Accel::kTcg;
  if (flags.hypervisor != "fake") {
    auto resolved = ResolveAccel(flags.accel);
    if (!resolved.ok()) {
      std::cerr << "vdswapd: " << resolved.status().message() << "\n";
      return 2;
    }
    accel = *resolved;
  }
  std::error_code ec;
  const bool created = std::filesystem::create_directories(flags.state_dir, ec);
  if (ec) {
    std::cerr << "vdswapd: cannot create state dir '" << flags.state_dir << "': " << ec.message()
              << "\n";
    return 1;
  }
  if (Status s = RestrictStateDir(flags.state_dir, created); !s.ok()) {
    std::cerr << "vdswapd: " << s.message() << "\n";
    return 2;
  }
  // One daemon per state dir: a second one would take over the socket and could collect
  // the first one's images. Held until the process exits.
  auto state_lock = DirLock::Acquire(flags.state_dir, "vdswapd.lock");
  if (!state_lock.ok()) {
    std::cerr << "vdswapd: state dir " << state_lock.status().message() << "\n";
    return 4;
  }

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

  Metrics metrics;
  Router router;
  DaemonInfo info{flags.state_dir, flags.hypervisor, flags.uri, std::chrono::steady_clock::now()};
  SystemClock clock;
  SubprocessRunner runner;
  ImageStore images(**db, flags.state_dir);
  // Nothing is being built yet: whatever staging is left was interrupted.
  if (auto gc = images.Gc(/*unused=*/false); !gc.ok()) {
    VLOG(kWarning) << "image gc: " << gc.status().message();
  }
  RegisterImageRoutes(router, images, runner, clock);

  std::unique_ptr<Hypervisor> hypervisor;
  if (flags.hypervisor == "fake") {
    auto fake = std::make_unique<FakeHypervisor>(clock);
    if (flags.fake_latency_ms > 0) {
      using Op = FakeHypervisor::Op;
      for (Op op : {Op::kUpload, Op::kCreateVolume, Op::kDefineAndStart, Op::kStart, Op::kShutdown,
                    Op::kDetach, Op::kAttach, Op::kOpenAgent, Op::kAppStop, Op::kAppStart}) {
        fake->SetLatency(op, std::chrono::milliseconds(flags.fake_latency_ms));
      }
    }
    hypervisor = std::move(fake);
  } else {
    VLOG(kInfo) << "new VMs use " << (accel == Accel::kKvm ? "KVM" : "TCG (software)");
    hypervisor = std::make_unique<LibvirtHypervisor>(accel);
  }
  HostRegistry hosts(**db, *hypervisor, clock);
  TemplateStore templates(**db, images, clock);
  VmTable vm_table(**db);
  SwapJournal journal(**db);
  HostImages host_images(**db);
  RolloutStore rollout_store(**db);
  VmLocks vm_locks;
  ImageDistributor distributor(host_images, *hypervisor, clock);
  DiskPlanner disks(images, distributor, *hypervisor);
  GuestAgent agent(*hypervisor, clock);
  VmService vms(vm_table, vm_locks, hosts, templates, images, disks, agent, *hypervisor, clock,
                flags.uri);
  // Nothing is being created yet: VMs left in state creating were interrupted.
  if (auto settled = vms.ReconcileCreating(); !settled.ok()) {
    VLOG(kWarning) << "vms left in state creating: " << settled.status().message();
  }
  Swapper::Options swap_options;
  swap_options.order = *SwapOrderFromName(flags.swap_order);  // checked by the parser
  Swapper swapper(**db, vm_table, journal, vm_locks, hosts, templates, disks, agent, *hypervisor,
                  clock, swap_options);
  RolloutMetrics rollout_metrics(metrics, swap_options.order);
  RolloutEngine rollouts(rollout_store, vm_table, templates, hosts, swapper, agent, clock);
  rollouts.Observe(&rollout_metrics);
  rollouts.PrefetchWith(&disks);
  RegisterStatusRoutes(router, metrics, **db,
                       {hosts, host_images, images, templates, vm_table, rollout_store}, info);
  RegisterHostRoutes(router, hosts, host_images, vm_table);
  RegisterTemplateRoutes(router, templates);
  RegisterVmRoutes(router, vms, vm_table);
  RegisterRolloutRoutes(router, rollouts);

  HttpServer server(router, metrics);
  std::string socket = flags.socket.empty() ? flags.state_dir + "/vdswapd.sock" : flags.socket;
  if (Status s = server.ListenUnix(socket); !s.ok()) {
    std::cerr << "vdswapd: " << s.message() << "\n";
    return 1;
  }
  if (tcp) {
    if (Status s = server.ListenTcp(tcp->first, tcp->second, std::move(*auth)); !s.ok()) {
      std::cerr << "vdswapd: " << s.message() << "\n";
      return 1;
    }
  }
  VLOG(kInfo) << "vdswapd " << kVersion << " serving unix:" << socket
              << (flags.listen.empty() ? "" : " and tcp:" + flags.listen) << " (state dir "
              << flags.state_dir << ", hypervisor " << flags.hypervisor << ")";

  // Swaps and rollouts a previous run left unfinished continue in the background.
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
  app.add_option("--token-file", flags.token_file, "File holding the bearer token for --listen");
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
