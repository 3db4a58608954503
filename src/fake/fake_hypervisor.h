#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/clock.h"
#include "hypervisor/hypervisor.h"
#include "protocol/agent_protocol.h"

namespace vdswap {

// An in-memory Hypervisor for unit tests, crash tests and scale runs (`vdswapd
// --hypervisor fake`). Records every call (Calls), injects faults, and adds latency per
// operation on its Clock. Thread-safe.
//
// Every running VM runs the real guest Agent on a guest::FakeGuestEnv, and its agent
// channel carries the real protocol lines through Agent::HandleLine. The guest sees the
// VM's attached disks by serial; the app disk holds an app whose manifest is made up from
// the volume: version = the volume's name, a health check every 200 ms, a 15 s health
// timeout. Guest time is the Clock's. The agent answers every request however long it
// takes (the channel's timeout is not applied); HangNext simulates a silent agent.
class FakeHypervisor : public Hypervisor {
 public:
  enum class Op {
    kUpload,
    kCreateVolume,
    kDefineAndStart,
    kStart,
    kShutdown,
    kDetach,
    kAttach,
    kOpenAgent,
    kAppStop,
    kAppStart,
    kAppPrepare,  // the make-before-break agent ops, recorded with their slot's serial
    kAppSwitch,
    kAppRelease,
    kDeleteVolume,  // recorded only: no fault, hang or latency
    kVolumeSha256,
    kDestroy,
  };
  // One call the fake received. Fields a call does not name are "".
  struct Call {
    Op op = Op::kUpload;
    std::string host;    // the host's name (not for agent ops)
    std::string vm;      // the domain's name
    std::string serial;  // the disk slot: attach, detach and the make-before-break app ops
    std::string volume;  // the volume's name: upload, create, delete, sha256, attach

    // True when `op` equals want.op and every field set in `want` is equal.
    bool Matches(const Call& want) const;
  };

  // REQUIRES: `clock` outlives this.
  explicit FakeHypervisor(Clock& clock);
  ~FakeHypervisor() override;

  // Makes the next call of `op` fail with `status` (once).
  void FailNext(Op op, Status status);
  // Makes the next `op` time out as if the peer never answered (agent silence, a guest
  // that does not release a disk): it fails with kUnavailable.
  void HangNext(Op op);
  // Makes the next `op` fail with kUnavailable, and every call after it (GetState too)
  // for `d` of the clock's time, as while libvirtd restarts or a host drops off the network.
  void UnreachableAfter(Op op, std::chrono::milliseconds d);
  // Adds `latency` (slept on the Clock) to every call of `op` (a latency model for scale
  // runs).
  void SetLatency(Op op, std::chrono::milliseconds latency);
  // Marks the app on `volume` (a volume name) as one whose health check always fails, in
  // running guests and later boots: its start fails after the 15 s health timeout.
  void SetUnhealthyApp(const std::string& volume);
  // Defines a libvirt-like network on every host (`active` or not). Network "default" is
  // defined and active from the start, as on a Debian host with libvirt.
  void SetNetwork(const std::string& name, bool active);
  // Defines an inactive domain `name` that vdswap did not make (no vdswap marker), as an
  // administrator's own VM: GetState reports it unmanaged and every call that would change
  // it fails with NotManagedError.
  void AddForeignDomain(const std::string& name);
  // Makes every VM's agent hostile: each reply line (its id is 1) passes through `rewrite`
  // before the host decodes it; nullptr makes the agents honest again.
  using ReplyRewrite = std::function<std::string(AgentOp op, const std::string& line)>;
  void SetReplyRewrite(ReplyRewrite rewrite);
  // Every call so far, in order.
  std::vector<Call> Calls() const;
  // How many calls so far match `want` (Call::Matches).
  size_t CountCalls(const Call& want) const;
  // The index in Calls() of the first call matching `want`; -1 when none.
  int64_t FirstCall(const Call& want) const;
  // Bytes received by UploadVolume per host name.
  uint64_t UploadedBytes(const std::string& host) const;
  // Changes the bytes of an uploaded volume (as a bad disk would): its VolumeSha256 no
  // longer matches the file it was uploaded from.
  void CorruptVolume(const HostRef& host, const std::string& volume);
  // The guest agent's view of a VM: its app state (nullopt when the VM is not running),
  // app version, how many times the app was started in the VM's life, and boot id.
  struct GuestView {
    std::optional<AppState> app_state;
    std::string app_version;
    int starts = 0;
    std::string boot_id;
  };
  GuestView Guest(const std::string& vm) const;

  Result<std::string> EnsurePool(const HostRef& host) override;
  Result<std::string> FindVolume(const HostRef& host, const std::string& volume) override;
  Result<uint64_t> UploadVolume(const HostRef& host, const std::string& volume,
                                const std::string& local_path, const ProgressFn& progress) override;
  Result<std::string> CreateOverlay(const HostRef& host, const std::string& volume,
                                    const std::string& backing,
                                    const std::string& backing_format) override;
  Result<std::string> CreateBlankVolume(const HostRef& host, const std::string& volume,
                                        uint64_t bytes) override;
  Status DeleteVolume(const HostRef& host, const std::string& volume) override;
  Result<std::vector<std::string>> VolumeUsers(const HostRef& host,
                                               const std::string& volume) override;
  // The uploaded file's SHA-256 (of no bytes for blank volumes and overlays).
  Result<std::string> VolumeSha256(const HostRef& host, const std::string& volume) override;
  Status DefineAndStart(const HostRef& host, const VmSpec& spec) override;
  Status Start(const HostRef& host, const std::string& vm) override;
  Status Shutdown(const HostRef& host, const std::string& vm,
                  std::chrono::milliseconds grace) override;
  Status Destroy(const HostRef& host, const std::string& vm) override;
  Result<VmLiveState> GetState(const HostRef& host, const std::string& vm) override;
  Status DetachDisk(const HostRef& host, const std::string& vm, const std::string& serial,
                    std::chrono::milliseconds timeout) override;
  Status AttachDisk(const HostRef& host, const std::string& vm, const DiskSpec& disk) override;
  Status CheckNetwork(const HostRef& host, const std::string& network) override;
  // A running VM's NIC on an active network has the lease 192.168.122.N, N derived from
  // its MAC.
  Result<std::vector<InterfaceAddresses>> LeasedAddresses(const HostRef& host,
                                                          const std::string& vm) override;
  Result<std::string> ConsoleLog(const HostRef& host, const std::string& vm,
                                 uint64_t max_bytes) override;
  Result<std::unique_ptr<AgentChannel>> OpenAgent(const HostRef& host,
                                                  const std::string& vm) override;

 private:
  class Channel;
  struct RunningGuest;  // a guest OS that is up: the agent on its fake env
  struct Vm {
    VmSpec spec;
    bool managed = true;  // false for AddForeignDomain's domains
    bool running = false;
    std::vector<DiskSpec> disks;
    int boots = 0;
    int earlier_starts = 0;               // app starts in earlier boots
    std::shared_ptr<RunningGuest> guest;  // while running
  };
  // Records `call`, then applies latency and injected faults for its op; returns the
  // fault, if any. REQUIRES: mu_ not held.
  Status Enter(const Call& call);
  // Powers the VM on: a new guest with the VM's disks. The caller boots its agent.
  // REQUIRES: mu_ held.
  std::shared_ptr<RunningGuest> PowerOn(Vm& vm);
  // The guest is gone (powered off or destroyed). REQUIRES: mu_ held.
  void PowerOff(Vm& vm);
  // Sends one request to the agent of `vm`, as the channel does.
  Result<Json> AgentCall(const std::string& vm, AgentOp op, const Json& fields);
  // NotManagedError when `name` is a foreign domain, else ok. REQUIRES: mu_ held.
  Status CheckManaged(const std::string& name) const;
  std::string PoolPath(const HostRef& host) const { return "/fake/" + host.name + "/" + host.pool; }

  Clock& clock_;
  // Lock order: mu_, then a guest's own lock; an agent call holds only its guest's lock.
  mutable std::mutex mu_;
  std::map<Op, Status> fail_next_;
  std::set<Op> hang_next_;
  std::map<Op, std::chrono::milliseconds> unreachable_after_;
  Clock::TimePoint unreachable_until_{};
  std::map<Op, std::chrono::milliseconds> latency_;
  ReplyRewrite rewrite_;
  std::vector<Call> calls_;
  std::map<std::string, uint64_t> uploaded_;
  std::map<std::string, std::map<std::string, uint64_t>> volumes_;  // pool path -> name -> size
  std::map<std::string, std::string>
      volume_sha_;                              // pool path + "/" + name -> uploaded bytes' digest
  std::map<std::string, std::string> backing_;  // overlay's path -> its backing file
  std::map<std::string, Vm> vms_;
  std::set<std::string> unhealthy_;  // by name (names are unique across hosts)
  std::map<std::string, bool> networks_ = {{"default", true}};  // name -> active
};

}  // namespace vdswap
