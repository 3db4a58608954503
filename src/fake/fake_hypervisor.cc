#include "fake/fake_hypervisor.h"

#include <sys/stat.h>

#include <thread>

#include "hypervisor/host_uri.h"

namespace vdswap {

namespace {

const char* OpName(FakeHypervisor::Op op) {
  switch (op) {
    case FakeHypervisor::Op::kUpload:
      return "upload";
    case FakeHypervisor::Op::kCreateVolume:
      return "create-volume";
    case FakeHypervisor::Op::kDefineAndStart:
      return "define-start";
    case FakeHypervisor::Op::kStart:
      return "start";
    case FakeHypervisor::Op::kShutdown:
      return "shutdown";
    case FakeHypervisor::Op::kDetach:
      return "detach";
    case FakeHypervisor::Op::kAttach:
      return "attach";
    case FakeHypervisor::Op::kOpenAgent:
      return "open-agent";
    case FakeHypervisor::Op::kAppStop:
      return "app.stop";
    case FakeHypervisor::Op::kAppStart:
      return "app.start";
  }
  return "?";
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string Basename(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

class FakeChannel : public AgentChannel {
 public:
  FakeChannel(FakeHypervisor& hv, std::string vm) : hv_(hv), vm_(std::move(vm)) {}
  Result<Json> Call(const std::string& op, const Json&, std::chrono::milliseconds) override {
    return hv_.AgentCall(vm_, op);
  }

 private:
  FakeHypervisor& hv_;
  std::string vm_;
};

}  // namespace

void FakeHypervisor::FailNext(Op op, Status status) {
  std::lock_guard lock(mu_);
  fail_next_[op] = std::move(status);
}

void FakeHypervisor::SetUnhealthyApp(const std::string& volume) {
  std::lock_guard lock(mu_);
  unhealthy_.insert(volume);
}

void FakeHypervisor::HangNext(Op op) {
  std::lock_guard lock(mu_);
  hang_next_.insert(op);
}

void FakeHypervisor::SetLatency(Op op, std::chrono::milliseconds latency) {
  std::lock_guard lock(mu_);
  latency_[op] = latency;
}

std::vector<std::string> FakeHypervisor::Log() const {
  std::lock_guard lock(mu_);
  return log_;
}

uint64_t FakeHypervisor::UploadedBytes(const std::string& host) const {
  std::lock_guard lock(mu_);
  auto it = uploaded_.find(host);
  return it == uploaded_.end() ? 0 : it->second;
}

FakeHypervisor::GuestView FakeHypervisor::Guest(const std::string& vm) const {
  std::lock_guard lock(mu_);
  auto it = vms_.find(vm);
  if (it == vms_.end() || !it->second.running) return {};
  const Vm& v = it->second;
  return {v.app_state, v.app_version, v.starts, "boot-" + std::to_string(v.boots)};
}

// REQUIRES: mu_ not held.
Status FakeHypervisor::Enter(Op op, const std::string& what) {
  std::chrono::milliseconds delay{0};
  {
    std::lock_guard lock(mu_);
    log_.push_back(std::string(OpName(op)) + " " + what);
    auto l = latency_.find(op);
    if (l != latency_.end()) delay = l->second;
    if (hang_next_.erase(op)) {
      return Unavailable(std::string(OpName(op)) + " " + what + ": no answer (injected hang)");
    }
    auto f = fail_next_.find(op);
    if (f != fail_next_.end()) {
      Status s = f->second;
      fail_next_.erase(f);
      return s;
    }
  }
  if (delay.count() > 0) std::this_thread::sleep_for(delay);
  return Status::Ok();
}

void FakeHypervisor::BootGuest(Vm& vm) {
  vm.running = true;
  ++vm.boots;
  vm.app_state = "stopped";
  const DiskSpec* app = nullptr;
  for (const auto& d : vm.disks) {
    if (d.serial == kAppSerial) app = &d;
  }
  if (app != nullptr && !unhealthy_.count(Basename(app->path))) {
    vm.app_state = "running";
    vm.app_version = Basename(app->path);
    ++vm.starts;
  }
}

Result<std::string> FakeHypervisor::EnsurePool(const HostRef& host) {
  // "fake:" URIs are the fake's own; anything else must pass the same check as for libvirt.
  if (host.uri.rfind("fake:", 0) != 0) RETURN_IF_ERROR(ParseHostUri(host.uri).status());
  std::lock_guard lock(mu_);
  volumes_[PoolPath(host)];
  return PoolPath(host);
}

Result<std::string> FakeHypervisor::FindVolume(const HostRef& host, const std::string& volume) {
  std::lock_guard lock(mu_);
  auto& pool = volumes_[PoolPath(host)];
  if (!pool.count(volume))
    return NotFound("volume '" + volume + "' not on host '" + host.name + "'");
  return PoolPath(host) + "/" + volume;
}

Result<uint64_t> FakeHypervisor::UploadVolume(const HostRef& host, const std::string& volume,
                                              const std::string& local_path, const ProgressFn&) {
  RETURN_IF_ERROR(Enter(Op::kUpload, host.name + " " + volume));
  struct stat st {};
  if (stat(local_path.c_str(), &st) != 0) return NotFound("cannot read '" + local_path + "'");
  std::lock_guard lock(mu_);
  volumes_[PoolPath(host)][volume] = static_cast<uint64_t>(st.st_size);
  uploaded_[host.name] += static_cast<uint64_t>(st.st_size);
  return static_cast<uint64_t>(st.st_size);
}

Result<std::string> FakeHypervisor::CreateOverlay(const HostRef& host, const std::string& volume,
                                                  const std::string&, const std::string&) {
  return CreateBlankVolume(host, volume, 0);
}

Result<std::string> FakeHypervisor::CreateBlankVolume(const HostRef& host,
                                                      const std::string& volume, uint64_t) {
  RETURN_IF_ERROR(Enter(Op::kCreateVolume, host.name + " " + volume));
  std::lock_guard lock(mu_);
  auto& pool = volumes_[PoolPath(host)];
  if (pool.count(volume)) return AlreadyExists("volume '" + volume + "' exists");
  pool[volume] = 196608;  // an empty qcow2
  return PoolPath(host) + "/" + volume;
}

Status FakeHypervisor::DeleteVolume(const HostRef& host, const std::string& volume) {
  std::lock_guard lock(mu_);
  log_.push_back("delete-volume " + host.name + " " + volume);
  volumes_[PoolPath(host)].erase(volume);
  return Status::Ok();
}

Result<uint64_t> FakeHypervisor::VolumeAllocation(const HostRef& host, const std::string& volume) {
  std::lock_guard lock(mu_);
  auto& pool = volumes_[PoolPath(host)];
  auto it = pool.find(volume);
  if (it == pool.end()) return NotFound("volume '" + volume + "' not found");
  return it->second;
}

Status FakeHypervisor::DefineAndStart(const HostRef& host, const VmSpec& spec) {
  RETURN_IF_ERROR(Enter(Op::kDefineAndStart, host.name + " " + spec.name));
  std::lock_guard lock(mu_);
  Vm& vm = vms_[spec.name];
  if (vm.running) return FailedPrecondition("vm '" + spec.name + "' is running");
  vm.spec = spec;
  vm.disks.clear();
  for (const DiskSpec* d : {&spec.os, &spec.app, &spec.data}) {
    if (!d->path.empty()) vm.disks.push_back(*d);
  }
  BootGuest(vm);
  return Status::Ok();
}

Status FakeHypervisor::Start(const HostRef& host, const std::string& name) {
  RETURN_IF_ERROR(Enter(Op::kStart, host.name + " " + name));
  std::lock_guard lock(mu_);
  auto it = vms_.find(name);
  if (it == vms_.end()) return NotFound("vm '" + name + "' not found");
  if (!it->second.running) BootGuest(it->second);
  return Status::Ok();
}

Status FakeHypervisor::Shutdown(const HostRef& host, const std::string& name,
                                std::chrono::milliseconds) {
  RETURN_IF_ERROR(Enter(Op::kShutdown, host.name + " " + name));
  std::lock_guard lock(mu_);
  auto it = vms_.find(name);
  if (it != vms_.end()) {
    it->second.running = false;
    it->second.app_state = "stopped";
  }
  return Status::Ok();
}

Status FakeHypervisor::Destroy(const HostRef& host, const std::string& name) {
  std::lock_guard lock(mu_);
  log_.push_back("destroy " + host.name + " " + name);
  vms_.erase(name);
  return Status::Ok();
}

Result<VmLiveState> FakeHypervisor::GetState(const HostRef&, const std::string& name) {
  std::lock_guard lock(mu_);
  VmLiveState state;
  auto it = vms_.find(name);
  if (it == vms_.end()) return state;
  state.exists = true;
  state.running = it->second.running;
  state.disks = it->second.disks;
  state.nics = it->second.spec.nics;
  return state;
}

Status FakeHypervisor::DetachDisk(const HostRef& host, const std::string& name,
                                  const std::string& serial, std::chrono::milliseconds) {
  RETURN_IF_ERROR(Enter(Op::kDetach, name + " " + serial));
  (void)host;
  std::lock_guard lock(mu_);
  auto it = vms_.find(name);
  if (it == vms_.end()) return NotFound("vm '" + name + "' not found");
  auto& disks = it->second.disks;
  disks.erase(std::remove_if(disks.begin(), disks.end(),
                             [&](const DiskSpec& d) { return d.serial == serial; }),
              disks.end());
  return Status::Ok();
}

Status FakeHypervisor::AttachDisk(const HostRef& host, const std::string& name,
                                  const DiskSpec& disk) {
  RETURN_IF_ERROR(Enter(Op::kAttach, name + " " + disk.serial + " " + Basename(disk.path)));
  (void)host;
  std::lock_guard lock(mu_);
  auto it = vms_.find(name);
  if (it == vms_.end()) return NotFound("vm '" + name + "' not found");
  for (const auto& d : it->second.disks) {
    if (d.serial == disk.serial) {
      if (d.path == disk.path) return Status::Ok();
      return FailedPrecondition("vm '" + name + "' has another " + disk.serial + " attached");
    }
  }
  it->second.disks.push_back(disk);
  return Status::Ok();
}

void FakeHypervisor::SetNetwork(const std::string& name, bool active) {
  std::lock_guard lock(mu_);
  networks_[name] = active;
}

Status FakeHypervisor::CheckNetwork(const HostRef& host, const std::string& network) {
  std::lock_guard lock(mu_);
  auto it = networks_.find(network);
  if (it == networks_.end()) {
    return FailedPrecondition("network '" + network + "' is not defined on host '" + host.name +
                              "'");
  }
  if (!it->second) {
    return FailedPrecondition("network '" + network + "' on host '" + host.name +
                              "' is not active");
  }
  return Status::Ok();
}

Result<std::vector<InterfaceAddresses>> FakeHypervisor::LeasedAddresses(const HostRef&,
                                                                        const std::string& name) {
  std::lock_guard lock(mu_);
  auto it = vms_.find(name);
  if (it == vms_.end()) return NotFound("vm '" + name + "' not found");
  std::vector<InterfaceAddresses> out;
  if (!it->second.running) return out;
  for (const NicSpec& nic : it->second.spec.nics) {
    auto net = networks_.find(nic.network);
    if (net == networks_.end() || !net->second) continue;
    unsigned last =
        nic.mac.size() >= 2 ? std::stoul(nic.mac.substr(nic.mac.size() - 2), nullptr, 16) : 0;
    out.push_back({nic.mac, {"192.168.122." + std::to_string(2 + last % 250)}});
  }
  return out;
}

Result<std::string> FakeHypervisor::ConsoleLog(const HostRef&, const std::string& name,
                                               uint64_t max_bytes) {
  std::lock_guard lock(mu_);
  auto it = vms_.find(name);
  if (it == vms_.end()) return NotFound("vm '" + name + "' has no console log");
  std::string log;
  for (int boot = 1; boot <= it->second.boots; ++boot) {
    log += "fake console of vm " + name + ": boot " + std::to_string(boot) + "\n";
  }
  return log.size() > max_bytes ? log.substr(log.size() - max_bytes) : log;
}

Result<std::unique_ptr<AgentChannel>> FakeHypervisor::OpenAgent(const HostRef& host,
                                                                const std::string& name) {
  RETURN_IF_ERROR(Enter(Op::kOpenAgent, host.name + " " + name));
  std::lock_guard lock(mu_);
  auto it = vms_.find(name);
  if (it == vms_.end() || !it->second.running) {
    return Unavailable("vm '" + name + "' is not running");
  }
  return std::unique_ptr<AgentChannel>(new FakeChannel(*this, name));
}

Result<Json> FakeHypervisor::AgentCall(const std::string& name, const std::string& op) {
  if (op == "app.stop") RETURN_IF_ERROR(Enter(Op::kAppStop, name));
  if (op == "app.start") RETURN_IF_ERROR(Enter(Op::kAppStart, name));
  std::lock_guard lock(mu_);
  auto it = vms_.find(name);
  if (it == vms_.end() || !it->second.running) return Unavailable("vm '" + name + "' is off");
  Vm& vm = it->second;
  auto app_json = [&vm] {
    Json j = {{"state", vm.app_state},
              {"healthy", vm.app_state == "running"},
              {"version", vm.app_version},
              {"name", "fake"},
              {"health_output", vm.app_version + " starts=" + std::to_string(vm.starts)}};
    return j;
  };
  if (op == "hello") {
    return Json{{"boot_id", "boot-" + std::to_string(vm.boots)},
                {"os_release", {{"ID", "vdswap-testos"}}}};
  }
  if (op == "status") {
    return Json{{"boot_id", "boot-" + std::to_string(vm.boots)}, {"app", app_json()}};
  }
  if (op == "app.stop") {
    if (vm.app_state != "stopped") vm.stopped_at_ms = NowMs();
    vm.app_state = "stopped";
    return Json{{"stopped", true}};
  }
  if (op == "app.start") {
    if (vm.app_state == "running") return app_json();
    const DiskSpec* app = nullptr;
    for (const auto& d : vm.disks) {
      if (d.serial == kAppSerial) app = &d;
    }
    if (app == nullptr)
      return NotFound("agent of vm '" + name + "': no disk with serial 'vdswap-app'");
    vm.app_version = Basename(app->path);
    ++vm.starts;
    if (unhealthy_.count(vm.app_version)) {
      vm.app_state = "failed";
      return Internal("agent of vm '" + name + "': health check did not pass within 15 s");
    }
    vm.app_state = "running";
    Json j = app_json();
    if (vm.stopped_at_ms >= 0) j["last_downtime_ms"] = NowMs() - vm.stopped_at_ms;
    return j;
  }
  return InvalidArgument("unknown op '" + op + "'");
}

}  // namespace vdswap
