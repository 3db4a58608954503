#include "fleet/vm_service.h"

#include <strings.h>

#include <atomic>
#include <mutex>
#include <thread>

#include "core/log.h"
#include "image/manifest.h"

namespace vdswap {

namespace {

using std::chrono::seconds;
constexpr int kCreateParallelism = 4;
constexpr auto kBootTimeout = seconds(180);
constexpr auto kStatusTimeout = seconds(5);
// How long Inspect waits for an operation on the VM to let go before it answers busy.
constexpr auto kBusyWait = std::chrono::milliseconds(500);
constexpr auto kBusyPoll = std::chrono::milliseconds(50);
constexpr auto kShutdownGrace = seconds(60);

}  // namespace

VmService::VmService(VmTable& vms, VmLocks& locks, HostRegistry& hosts, TemplateStore& templates,
                     ImageStore& images, DiskPlanner& disks, AgentGateway& agent, Hypervisor& hv,
                     Clock& clock, std::string default_uri)
    : vms_(vms),
      locks_(locks),
      hosts_(hosts),
      templates_(templates),
      images_(images),
      disks_(disks),
      agent_(agent),
      hv_(hv),
      clock_(clock),
      default_uri_(std::move(default_uri)) {}

Status VmService::CreateOne(const std::string& name, const Template& t, const HostRef& host,
                            const ProgressFn& progress) {
  std::lock_guard vm_lock(locks_.For(name));
  VmRecord vm{name,
              host.name,
              t.name,
              t.version,
              VmState::kCreating,
              OsOverlayVolume(name, t.version),
              DataVolume(name),
              "",
              {}};
  for (const std::string& network : t.networks) vm.nics.push_back({network, ""});
  ASSIGN_OR_RETURN(vm, vms_.Insert(vm, clock_.UnixSeconds()));
  auto fail = [&](const Status& s) {
    vms_.SetState(name, VmState::kFailed, s.message()).IgnoreError();
    return s;
  };
  if (progress) progress({{"phase", "create"}, {"vm", name}, {"message", "creating vm " + name}});
  auto disks = disks_.Ensure(host, t, progress);
  if (!disks.ok()) return fail(disks.status());
  auto overlay = disks_.CreateOsOverlay(host, vm.os_volume, *disks);
  if (!overlay.ok()) return fail(overlay.status());
  if (!hv_.FindVolume(host, vm.data_volume).ok()) {
    auto data = hv_.CreateBlankVolume(host, vm.data_volume, static_cast<uint64_t>(t.data_bytes));
    if (!data.ok()) return fail(data.status());
  }
  auto spec = disks_.Spec(vm, host, t, *disks, *overlay);
  if (!spec.ok()) return fail(spec.status());
  if (Status s = hv_.DefineAndStart(host, *spec); !s.ok()) return fail(s);
  auto healthy = agent_.AwaitHealthy(host, name, kBootTimeout);
  if (!healthy.ok()) return fail(healthy.status().WithContext("vm '" + name + "'"));
  if (progress) {
    progress({{"phase", "create"}, {"vm", name}, {"message", "vm " + name + " is up and healthy"}});
  }
  return vms_.SetState(name, VmState::kRunning, "");
}

Result<CreateResult> VmService::Create(const std::vector<std::string>& names,
                                       const std::string& template_ref,
                                       const std::string& host_name, const ProgressFn& progress,
                                       const std::function<bool()>& cancelled) {
  if (names.empty()) return InvalidArgument("no VM names given");
  for (const auto& n : names) {
    if (!IsValidName(n)) return InvalidArgument("vm name '" + n + "' is not valid");
    ASSIGN_OR_RETURN(bool exists, vms_.Exists(n));
    if (exists) return AlreadyExists("vm '" + n + "' exists");
  }
  ASSIGN_OR_RETURN(Template t, templates_.Get(template_ref));
  HostRef host;
  if (host_name.empty()) {
    ASSIGN_OR_RETURN(host, hosts_.Default(default_uri_));
  } else {
    ASSIGN_OR_RETURN(host, hosts_.Get(host_name));
  }
  // Before anything is created: a VM without its network would come up unreachable.
  for (const std::string& network : t.networks) {
    RETURN_IF_ERROR(hv_.CheckNetwork(host, network).WithContext("template '" + t.Ref() + "'"));
  }
  // A domain of that name that vdswap did not define is someone else's VM: refused before
  // anything is recorded or made.
  for (const auto& n : names) {
    ASSIGN_OR_RETURN(VmLiveState live, hv_.GetState(host, n));
    if (live.exists && !live.managed) return NotManagedError(n);
  }
  std::mutex mu;
  ProgressFn safe_progress = [&](const Json& e) {
    std::lock_guard lock(mu);
    if (progress) progress(e);
  };
  std::vector<Status> results(names.size());
  std::atomic<size_t> next{0};
  std::vector<std::thread> workers;
  for (int w = 0; w < std::min<int>(kCreateParallelism, static_cast<int>(names.size())); ++w) {
    workers.emplace_back([&] {
      // Checked between VMs: a VM once started is finished, never left half-made.
      for (size_t i; !(cancelled && cancelled()) && (i = next++) < names.size();) {
        results[i] = CreateOne(names[i], t, host, safe_progress);
      }
    });
  }
  for (auto& w : workers) w.join();
  if (const size_t started = std::min(next.load(), names.size()); started < names.size()) {
    return Unavailable("vm create cancelled (client gone or vdswapd stopping) after starting " +
                       std::to_string(started) + " of " + std::to_string(names.size()) +
                       " VMs; those are complete");
  }
  CreateResult out{t.Ref(), host.name, {}};
  Status first_error;
  for (size_t i = 0; i < names.size(); ++i) {
    out.vms.push_back(
        {names[i], results[i].ok() ? VmState::kRunning : VmState::kFailed, results[i].message()});
    if (!results[i].ok() && first_error.ok()) first_error = results[i];
  }
  if (!first_error.ok() && names.size() == 1) return first_error;
  return out;
}

Result<VmRecord> VmService::Get(const std::string& name) { return vms_.Get(name); }

Result<std::vector<VmRecord>> VmService::List(const std::string& template_name) {
  return vms_.List(template_name);
}

Result<VmInspection> VmService::Inspect(const std::string& name) {
  VmInspection out;
  ASSIGN_OR_RETURN(out.vm, vms_.Get(name));
  ASSIGN_OR_RETURN(HostRef host, hosts_.Get(out.vm.host));
  auto t = templates_.Get(out.vm.template_name + ":" + std::to_string(out.vm.version));
  if (t.ok()) {
    auto image = images_.Resolve("sha256:" + t->app_digest, ImageKind::kApp);
    if (image.ok()) {
      out.app_image =
          VmInspection::AppImage{image->name, image->version, "sha256:" + image->digest};
    }
  }
  auto live = hv_.GetState(host, name);
  out.hypervisor_status = live.status();
  if (!live.ok()) return out;
  out.live = *live;
  if (!live->running) {
    for (const NicSpec& nic : out.vm.nics) out.interfaces.push_back({nic.network, nic.mac, {}});
    return out;
  }
  out.interfaces = Interfaces(out.vm, host);
  std::unique_lock vm_lock(locks_.For(name), std::try_to_lock);
  for (auto waited = kBusyPoll; !vm_lock.owns_lock() && waited <= kBusyWait; waited += kBusyPoll) {
    clock_.SleepFor(kBusyPoll);
    vm_lock.try_lock();
  }
  if (!vm_lock.owns_lock()) {
    out.agent_status = Unavailable("vm '" + name +
                                   "' is busy (a swap or another operation holds it): its agent "
                                   "is not called meanwhile");
    return out;
  }
  auto view = agent_.LiveView(host, name, kStatusTimeout);
  out.agent_status = view.status();
  if (!view.ok()) return out;
  const StatusReply& st = view->status;
  VmInspection::Guest g;
  g.boot_id = st.boot_id;
  g.healthy = st.app.healthy;
  g.app_state = st.app.state;
  g.running_version = st.app.version;
  g.health_output = st.app.health_output;
  g.last_downtime_ms = st.app.last_downtime_ms;
  // Guest text, shown to operators: only well-formed names and versions pass.
  auto checked = [](const std::string& v, bool (*valid)(std::string_view)) {
    return v.empty() || valid(v) ? v : std::string("(invalid)");
  };
  g.os_id = checked(view->hello.os_id, IsValidName);
  g.os_version = checked(view->hello.os_version_id, IsValidVersion);
  g.os_image_version = checked(view->hello.os_image_version, IsValidVersion);
  out.guest = g;
  return out;
}

std::vector<VmInspection::Interface> VmService::Interfaces(const VmRecord& vm,
                                                           const HostRef& host) {
  std::vector<VmInspection::Interface> out;
  std::vector<InterfaceAddresses> leases;
  if (!vm.nics.empty()) {
    auto leased = hv_.LeasedAddresses(host, vm.name);
    if (leased.ok()) leases = std::move(*leased);
  }
  for (const NicSpec& nic : vm.nics) {
    VmInspection::Interface i{nic.network, nic.mac, {}};
    for (const auto& lease : leases) {
      if (strcasecmp(lease.mac.c_str(), nic.mac.c_str()) == 0) i.addresses = lease.addresses;
    }
    out.push_back(std::move(i));
  }
  return out;
}

std::string VmService::FirstAddress(const VmRecord& vm) {
  if (vm.nics.empty() || vm.state == VmState::kStopped) return "";
  auto host = hosts_.Get(vm.host);
  if (!host.ok()) return "";
  for (const auto& i : Interfaces(vm, *host)) {
    if (!i.addresses.empty()) return i.addresses.front();
  }
  return "";
}

Result<std::string> VmService::Console(const std::string& name, uint64_t max_bytes) {
  ASSIGN_OR_RETURN(VmRecord vm, vms_.Get(name));
  ASSIGN_OR_RETURN(HostRef host, hosts_.Get(vm.host));
  return hv_.ConsoleLog(host, name, max_bytes);
}

Status VmService::Start(const std::string& name) {
  std::lock_guard vm_lock(locks_.For(name));
  ASSIGN_OR_RETURN(VmRecord vm, vms_.Get(name));
  ASSIGN_OR_RETURN(HostRef host, hosts_.Get(vm.host));
  RETURN_IF_ERROR(hv_.Start(host, name));
  auto healthy = agent_.AwaitHealthy(host, name, kBootTimeout);
  if (!healthy.ok()) {
    vms_.SetState(name, VmState::kFailed, healthy.status().message()).IgnoreError();
    return healthy.status();
  }
  return vms_.SetState(name, VmState::kRunning, "");
}

Status VmService::Stop(const std::string& name) {
  std::lock_guard vm_lock(locks_.For(name));
  ASSIGN_OR_RETURN(VmRecord vm, vms_.Get(name));
  ASSIGN_OR_RETURN(HostRef host, hosts_.Get(vm.host));
  RETURN_IF_ERROR(hv_.Shutdown(host, name, kShutdownGrace));
  return vms_.SetState(name, VmState::kStopped, "");
}

Status VmService::Remove(const std::string& name, bool delete_data) {
  std::lock_guard vm_lock(locks_.For(name));
  ASSIGN_OR_RETURN(VmRecord vm, vms_.Get(name));
  ASSIGN_OR_RETURN(HostRef host, hosts_.Get(vm.host));
  RETURN_IF_ERROR(hv_.Destroy(host, name));
  // Every overlay this VM had (an OS swap keeps the previous one for rollback).
  ASSIGN_OR_RETURN(auto versions, templates_.Versions(vm.template_name));
  for (int64_t v : versions) RETURN_IF_ERROR(hv_.DeleteVolume(host, OsOverlayVolume(name, v)));
  if (delete_data) RETURN_IF_ERROR(hv_.DeleteVolume(host, vm.data_volume));
  // Its rollout_vms and swap_journal rows go with it (ON DELETE CASCADE).
  return vms_.Delete(name);
}

Result<int> VmService::ReconcileCreating() {
  ASSIGN_OR_RETURN(std::vector<VmRecord> all, vms_.List());
  int settled = 0;
  for (const VmRecord& vm : all) {
    if (vm.state != VmState::kCreating) continue;
    std::lock_guard vm_lock(locks_.For(vm.name));
    if (Status s = SettleCreating(vm); !s.ok()) {
      // Left failed rather than creating: `vm rm` can remove a failed VM.
      const std::string why = "vdswapd stopped while creating this vm: " + s.message();
      VLOG(kWarning) << "vm '" << vm.name << "': " << why;
      RETURN_IF_ERROR(vms_.SetState(vm.name, VmState::kFailed, why));
    }
    ++settled;
  }
  return settled;
}

Status VmService::SettleCreating(const VmRecord& vm) {
  ASSIGN_OR_RETURN(HostRef host, hosts_.Get(vm.host));
  ASSIGN_OR_RETURN(VmLiveState live, hv_.GetState(host, vm.name));
  if (live.exists && live.managed) {
    const VmState now = live.running ? VmState::kRunning : VmState::kStopped;
    VLOG(kInfo) << "vm '" << vm.name << "' was being created when vdswapd stopped and its "
                << "domain exists: recorded " << VmStateName(now);
    return vms_.SetState(vm.name, now, "");
  }
  VLOG(kInfo) << "vm '" << vm.name << "' was being created when vdswapd stopped and has no "
              << "domain: removing its record and OS overlay " << vm.os_volume << " (data volume "
              << vm.data_volume << " kept)";
  RETURN_IF_ERROR(hv_.DeleteVolume(host, vm.os_volume));
  return vms_.Delete(vm.name);
}

}  // namespace vdswap
