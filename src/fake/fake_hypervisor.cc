#include "fake/fake_hypervisor.h"

#include <sys/stat.h>

#include <algorithm>

#include "core/enum_names.h"
#include "core/sha256.h"
#include "guest/agent/agent.h"
#include "guest/agent/fake_guest_env.h"
#include "hypervisor/host_uri.h"

namespace vdswap {

namespace {

using Op = FakeHypervisor::Op;
constexpr EnumNames<Op, 16> kOps = {{
    {Op::kUpload, "upload"},
    {Op::kCreateVolume, "create-volume"},
    {Op::kDefineAndStart, "define-start"},
    {Op::kStart, "start"},
    {Op::kShutdown, "shutdown"},
    {Op::kDetach, "detach"},
    {Op::kAttach, "attach"},
    {Op::kOpenAgent, "open-agent"},
    {Op::kAppStop, "app.stop"},
    {Op::kAppStart, "app.start"},
    {Op::kAppPrepare, "app.prepare"},
    {Op::kAppSwitch, "app.switch"},
    {Op::kAppRelease, "app.release"},
    {Op::kDeleteVolume, "delete-volume"},
    {Op::kVolumeSha256, "sha256"},
    {Op::kDestroy, "destroy"},
}};

// "detach h1 vm1 vdswap-app": the op and the fields the call names.
std::string Describe(const FakeHypervisor::Call& c) {
  std::string out(NameOf(kOps, c.op));
  for (const std::string* f : {&c.host, &c.vm, &c.serial, &c.volume}) {
    if (!f->empty()) out += " " + *f;
  }
  return out;
}

std::string Basename(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// The guest's device node of the disk with `serial`, as the domain XML assigns them.
std::string Device(const std::string& serial) {
  if (serial == kOsSerial) return "/dev/vda";
  if (serial == kAppSerial) return "/dev/vdb";
  if (serial == kAppSerialB) return "/dev/vdd";
  return "/dev/vdc";
}

// The app on an app volume, made up from its name.
AppManifest AppOnVolume(const std::string& volume) {
  AppManifest m;
  m.name = "fake";
  m.version = volume;
  m.start = {"/bin/app"};
  m.health.exec = {"/bin/app", "--health"};
  m.health.interval_ms = 200;
  m.health.timeout_s = 15;
  return m;
}

}  // namespace

struct FakeHypervisor::RunningGuest {
  RunningGuest(Clock& clock, std::string boot_id) : env(clock, std::move(boot_id)), agent(env) {}

  // Plugs `disk` in; an app disk comes with its app.
  void Plug(const DiskSpec& disk) {
    std::string device = Device(disk.serial);
    if (IsAppSerial(disk.serial)) env.PutApp(device, AppOnVolume(Basename(disk.path)));
    env.PlugDisk(disk.serial, device);
  }

  std::mutex mu;  // one request at a time, as on the serial port
  guest::FakeGuestEnv env;
  guest::Agent agent;
};

// Each call runs through the guest's agent as one request line and its reply line.
class FakeHypervisor::Channel : public AgentChannel {
 public:
  Channel(FakeHypervisor& hv, std::string vm) : hv_(hv), vm_(std::move(vm)) {}
  Result<Json> Call(AgentOp op, const Json& fields, std::chrono::milliseconds) override {
    return hv_.AgentCall(vm_, op, fields);
  }

 private:
  FakeHypervisor& hv_;
  std::string vm_;
};

FakeHypervisor::FakeHypervisor(Clock& clock) : clock_(clock) {}

FakeHypervisor::~FakeHypervisor() = default;

void FakeHypervisor::FailNext(Op op, Status status) {
  std::lock_guard lock(mu_);
  fail_next_[op] = std::move(status);
}

void FakeHypervisor::SetReplyRewrite(ReplyRewrite rewrite) {
  std::lock_guard lock(mu_);
  rewrite_ = std::move(rewrite);
}

void FakeHypervisor::SetUnhealthyApp(const std::string& volume) {
  std::lock_guard lock(mu_);
  unhealthy_.insert(volume);
  for (auto& [name, vm] : vms_) {
    if (!vm.guest) continue;
    std::lock_guard guest_lock(vm.guest->mu);
    vm.guest->env.SetHealthy(volume, false);
  }
}

void FakeHypervisor::HangNext(Op op) {
  std::lock_guard lock(mu_);
  hang_next_.insert(op);
}

void FakeHypervisor::UnreachableAfter(Op op, std::chrono::milliseconds d) {
  std::lock_guard lock(mu_);
  unreachable_after_[op] = d;
}

void FakeHypervisor::SetLatency(Op op, std::chrono::milliseconds latency) {
  std::lock_guard lock(mu_);
  latency_[op] = latency;
}

bool FakeHypervisor::Call::Matches(const Call& want) const {
  auto same = [](const std::string& mine, const std::string& wanted) {
    return wanted.empty() || mine == wanted;
  };
  return op == want.op && same(host, want.host) && same(vm, want.vm) && same(serial, want.serial) &&
         same(volume, want.volume);
}

std::vector<FakeHypervisor::Call> FakeHypervisor::Calls() const {
  std::lock_guard lock(mu_);
  return calls_;
}

size_t FakeHypervisor::CountCalls(const Call& want) const {
  std::lock_guard lock(mu_);
  return static_cast<size_t>(std::count_if(calls_.begin(), calls_.end(),
                                           [&want](const Call& c) { return c.Matches(want); }));
}

int64_t FakeHypervisor::FirstCall(const Call& want) const {
  std::lock_guard lock(mu_);
  for (size_t i = 0; i < calls_.size(); ++i) {
    if (calls_[i].Matches(want)) return static_cast<int64_t>(i);
  }
  return -1;
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
  std::lock_guard guest_lock(v.guest->mu);
  StatusReply status = v.guest->agent.Report();
  return {status.app.state, status.app.version, v.earlier_starts + v.guest->env.spawns(),
          status.boot_id};
}

// REQUIRES: mu_ not held.
Status FakeHypervisor::Enter(const Call& call) {
  const Op op = call.op;
  std::chrono::milliseconds delay{0};
  {
    std::lock_guard lock(mu_);
    calls_.push_back(call);
    auto l = latency_.find(op);
    if (l != latency_.end()) delay = l->second;
    if (hang_next_.erase(op)) {
      return Unavailable(Describe(call) + ": no answer (injected hang)");
    }
    if (auto u = unreachable_after_.find(op); u != unreachable_after_.end()) {
      unreachable_until_ = clock_.Now() + u->second;
      unreachable_after_.erase(u);
    }
    if (clock_.Now() < unreachable_until_) {
      return Unavailable(Describe(call) + ": host unreachable (injected)");
    }
    auto f = fail_next_.find(op);
    if (f != fail_next_.end()) {
      Status s = f->second;
      fail_next_.erase(f);
      return s;
    }
  }
  if (delay.count() > 0) clock_.SleepFor(delay);
  return Status::Ok();
}

std::shared_ptr<FakeHypervisor::RunningGuest> FakeHypervisor::PowerOn(Vm& vm) {
  vm.running = true;
  ++vm.boots;
  vm.guest = std::make_shared<RunningGuest>(clock_, "boot-" + std::to_string(vm.boots));
  for (const auto& d : vm.disks) vm.guest->Plug(d);
  for (const auto& volume : unhealthy_) vm.guest->env.SetHealthy(volume, false);
  return vm.guest;
}

void FakeHypervisor::PowerOff(Vm& vm) {
  if (vm.guest) {
    std::lock_guard guest_lock(vm.guest->mu);
    vm.earlier_starts += vm.guest->env.spawns();
  }
  vm.guest.reset();
  vm.running = false;
}

void FakeHypervisor::AddForeignDomain(const std::string& name) {
  std::lock_guard lock(mu_);
  Vm& vm = vms_[name];
  vm.managed = false;
  vm.spec.name = name;
}

Status FakeHypervisor::CheckManaged(const std::string& name) const {
  auto it = vms_.find(name);
  if (it != vms_.end() && !it->second.managed) return NotManagedError(name);
  return Status::Ok();
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
  if (!pool.count(volume)) {
    return NotFound("volume '" + volume + "' not on host '" + host.name + "'");
  }
  return PoolPath(host) + "/" + volume;
}

Result<uint64_t> FakeHypervisor::UploadVolume(const HostRef& host, const std::string& volume,
                                              const std::string& local_path, const ProgressFn&) {
  RETURN_IF_ERROR(Enter({Op::kUpload, host.name, "", "", volume}));
  struct stat st {};
  if (stat(local_path.c_str(), &st) != 0) return NotFound("cannot read '" + local_path + "'");
  ASSIGN_OR_RETURN(std::string sha, Sha256::OfFile(local_path));
  std::lock_guard lock(mu_);
  if (volumes_[PoolPath(host)].count(volume)) {
    return AlreadyExists("volume '" + volume + "' exists on host '" + host.name + "'");
  }
  volumes_[PoolPath(host)][volume] = static_cast<uint64_t>(st.st_size);
  volume_sha_[PoolPath(host) + "/" + volume] = sha;
  uploaded_[host.name] += static_cast<uint64_t>(st.st_size);
  return static_cast<uint64_t>(st.st_size);
}

Result<std::string> FakeHypervisor::CreateOverlay(const HostRef& host, const std::string& volume,
                                                  const std::string& backing, const std::string&) {
  ASSIGN_OR_RETURN(std::string path, CreateBlankVolume(host, volume, 0));
  std::lock_guard lock(mu_);
  backing_[path] = backing;
  return path;
}

Result<std::string> FakeHypervisor::CreateBlankVolume(const HostRef& host,
                                                      const std::string& volume, uint64_t) {
  RETURN_IF_ERROR(Enter({Op::kCreateVolume, host.name, "", "", volume}));
  std::lock_guard lock(mu_);
  auto& pool = volumes_[PoolPath(host)];
  if (pool.count(volume)) return AlreadyExists("volume '" + volume + "' exists");
  pool[volume] = 196608;  // an empty qcow2
  return PoolPath(host) + "/" + volume;
}

Status FakeHypervisor::DeleteVolume(const HostRef& host, const std::string& volume) {
  std::lock_guard lock(mu_);
  calls_.push_back({Op::kDeleteVolume, host.name, "", "", volume});
  volumes_[PoolPath(host)].erase(volume);
  volume_sha_.erase(PoolPath(host) + "/" + volume);
  backing_.erase(PoolPath(host) + "/" + volume);
  return Status::Ok();
}

Result<std::vector<std::string>> FakeHypervisor::VolumeUsers(const HostRef& host,
                                                             const std::string& volume) {
  std::lock_guard lock(mu_);
  const std::string path = PoolPath(host) + "/" + volume;
  std::vector<std::string> users;
  for (const auto& [overlay, backing] : backing_) {
    if (backing == path) users.push_back(overlay.substr(overlay.rfind('/') + 1));
  }
  for (const auto& [name, vm] : vms_) {
    bool uses = false;
    for (const DiskSpec* d : {&vm.spec.os, &vm.spec.app, &vm.spec.data}) uses |= d->path == path;
    for (const DiskSpec& d : vm.disks) uses |= d.path == path;
    if (uses) users.push_back("domain " + name);
  }
  return users;
}

Result<std::string> FakeHypervisor::VolumeSha256(const HostRef& host, const std::string& volume) {
  std::lock_guard lock(mu_);
  if (!volumes_[PoolPath(host)].count(volume)) {
    return NotFound("volume '" + volume + "' not on host '" + host.name + "'");
  }
  calls_.push_back({Op::kVolumeSha256, host.name, "", "", volume});
  auto it = volume_sha_.find(PoolPath(host) + "/" + volume);
  return it != volume_sha_.end() ? it->second : Sha256::Of("");
}

void FakeHypervisor::CorruptVolume(const HostRef& host, const std::string& volume) {
  std::lock_guard lock(mu_);
  volume_sha_[PoolPath(host) + "/" + volume] = Sha256::Of("corrupted " + volume);
}

Status FakeHypervisor::DefineAndStart(const HostRef& host, const VmSpec& spec) {
  RETURN_IF_ERROR(Enter({Op::kDefineAndStart, host.name, spec.name}));
  std::unique_lock lock(mu_);
  RETURN_IF_ERROR(CheckManaged(spec.name));
  Vm& vm = vms_[spec.name];
  if (vm.running) return FailedPrecondition("vm '" + spec.name + "' is running");
  vm.spec = spec;
  vm.disks.clear();
  for (const DiskSpec* d : {&spec.os, &spec.app, &spec.data}) {
    if (!d->path.empty()) vm.disks.push_back(*d);
  }
  std::shared_ptr<RunningGuest> guest = PowerOn(vm);
  // The guest boots on its own time: hold only its lock while the agent starts the app.
  std::lock_guard guest_lock(guest->mu);
  lock.unlock();
  guest->agent.Boot();
  return Status::Ok();
}

Status FakeHypervisor::Start(const HostRef& host, const std::string& name) {
  RETURN_IF_ERROR(Enter({Op::kStart, host.name, name}));
  std::unique_lock lock(mu_);
  auto it = vms_.find(name);
  if (it == vms_.end()) return NotFound("vm '" + name + "' not found");
  RETURN_IF_ERROR(CheckManaged(name));
  if (it->second.running) return Status::Ok();
  std::shared_ptr<RunningGuest> guest = PowerOn(it->second);
  std::lock_guard guest_lock(guest->mu);
  lock.unlock();
  guest->agent.Boot();
  return Status::Ok();
}

Status FakeHypervisor::Shutdown(const HostRef& host, const std::string& name,
                                std::chrono::milliseconds) {
  RETURN_IF_ERROR(Enter({Op::kShutdown, host.name, name}));
  std::lock_guard lock(mu_);
  RETURN_IF_ERROR(CheckManaged(name));
  auto it = vms_.find(name);
  if (it != vms_.end() && it->second.guest) {
    {
      // The power button: the agent stops the app, then the guest powers off.
      std::lock_guard guest_lock(it->second.guest->mu);
      it->second.guest->agent.Shutdown();
      it->second.guest->env.PowerOff();
    }
    PowerOff(it->second);
  }
  return Status::Ok();
}

Status FakeHypervisor::Destroy(const HostRef& host, const std::string& name) {
  std::lock_guard lock(mu_);
  calls_.push_back({Op::kDestroy, host.name, name});
  RETURN_IF_ERROR(CheckManaged(name));
  vms_.erase(name);
  return Status::Ok();
}

Result<VmLiveState> FakeHypervisor::GetState(const HostRef& host, const std::string& name) {
  std::lock_guard lock(mu_);
  if (clock_.Now() < unreachable_until_) {
    return Unavailable("state of vm '" + name + "' on host '" + host.name +
                       "': host unreachable (injected)");
  }
  VmLiveState state;
  auto it = vms_.find(name);
  if (it == vms_.end()) return state;
  state.exists = true;
  state.managed = it->second.managed;
  state.running = it->second.running;
  state.disks = it->second.disks;
  state.nics = it->second.spec.nics;
  return state;
}

Status FakeHypervisor::DetachDisk(const HostRef& host, const std::string& name,
                                  const std::string& serial, std::chrono::milliseconds) {
  RETURN_IF_ERROR(Enter({Op::kDetach, host.name, name, serial}));
  std::lock_guard lock(mu_);
  auto it = vms_.find(name);
  if (it == vms_.end()) return NotFound("vm '" + name + "' not found");
  RETURN_IF_ERROR(CheckManaged(name));
  auto& disks = it->second.disks;
  disks.erase(std::remove_if(disks.begin(), disks.end(),
                             [&](const DiskSpec& d) { return d.serial == serial; }),
              disks.end());
  if (it->second.guest) {
    std::lock_guard guest_lock(it->second.guest->mu);
    it->second.guest->env.UnplugDisk(serial);
  }
  return Status::Ok();
}

Status FakeHypervisor::AttachDisk(const HostRef& host, const std::string& name,
                                  const DiskSpec& disk) {
  RETURN_IF_ERROR(Enter({Op::kAttach, host.name, name, disk.serial, Basename(disk.path)}));
  std::lock_guard lock(mu_);
  auto it = vms_.find(name);
  if (it == vms_.end()) return NotFound("vm '" + name + "' not found");
  RETURN_IF_ERROR(CheckManaged(name));
  for (const auto& d : it->second.disks) {
    if (d.serial == disk.serial) {
      if (d.path == disk.path) return Status::Ok();
      return FailedPrecondition("vm '" + name + "' has another " + disk.serial + " attached");
    }
  }
  it->second.disks.push_back(disk);
  if (it->second.guest) {
    std::lock_guard guest_lock(it->second.guest->mu);
    it->second.guest->Plug(disk);
  }
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
  RETURN_IF_ERROR(Enter({Op::kOpenAgent, host.name, name}));
  std::lock_guard lock(mu_);
  RETURN_IF_ERROR(CheckManaged(name));
  auto it = vms_.find(name);
  if (it == vms_.end() || !it->second.running) {
    return Unavailable("vm '" + name + "' is not running");
  }
  return std::unique_ptr<AgentChannel>(new Channel(*this, name));
}

Result<Json> FakeHypervisor::AgentCall(const std::string& name, AgentOp op, const Json& fields) {
  if (op == AgentOp::kAppStop) RETURN_IF_ERROR(Enter({Op::kAppStop, "", name}));
  if (op == AgentOp::kAppStart) RETURN_IF_ERROR(Enter({Op::kAppStart, "", name}));
  std::string slot = fields.is_object() ? fields.value("serial", std::string()) : std::string();
  if (op == AgentOp::kAppPrepare) RETURN_IF_ERROR(Enter({Op::kAppPrepare, "", name, slot}));
  if (op == AgentOp::kAppSwitch) RETURN_IF_ERROR(Enter({Op::kAppSwitch, "", name, slot}));
  if (op == AgentOp::kAppRelease) RETURN_IF_ERROR(Enter({Op::kAppRelease, "", name, slot}));
  std::shared_ptr<RunningGuest> guest;
  ReplyRewrite rewrite;
  {
    std::lock_guard lock(mu_);
    auto it = vms_.find(name);
    if (it == vms_.end() || !it->second.running) return Unavailable("vm '" + name + "' is off");
    guest = it->second.guest;
    rewrite = rewrite_;
  }
  std::string reply_line;
  bool powering_off = false;
  {
    std::lock_guard guest_lock(guest->mu);
    guest->agent.Tick();  // the agent's main loop supervises between requests
    reply_line = guest->agent.HandleLine(EncodeRequest(1, op, fields));
    if (guest->agent.shutting_down()) {
      guest->env.PowerOff();
      powering_off = true;
    }
  }
  if (powering_off) {
    std::lock_guard lock(mu_);
    auto it = vms_.find(name);
    if (it != vms_.end() && it->second.guest == guest) PowerOff(it->second);
  }
  if (rewrite) reply_line = rewrite(op, reply_line);
  auto reply = DecodeReply(reply_line);
  if (!reply.ok()) return Internal("agent of vm '" + name + "': " + reply.status().message());
  if (reply->result.ok()) return std::move(reply->result);
  const Status& err = reply->result.status();
  return Status(err.code(), "agent of vm '" + name + "': " + err.message());
}

}  // namespace vdswap
