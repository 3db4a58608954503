#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/json.h"
#include "core/progress.h"
#include "core/status.h"
#include "protocol/agent_protocol.h"

namespace vdswap {

// A host: a libvirt connection URI and the storage pool vdswap keeps its volumes in.
struct HostRef {
  std::string name;
  std::string uri;
  std::string pool;
};

struct DiskSpec {
  std::string serial;  // kOsSerial, kAppSerial or kDataSerial
  std::string path;    // volume path on the host
  std::string format;  // "raw" or "qcow2"
  bool readonly = false;
};

// A NIC on a libvirt network of the VM's host, with the MAC chosen for it once (kept
// across restarts and OS swaps, so the VM keeps its DHCP lease).
struct NicSpec {
  std::string network;
  std::string mac;  // "52:54:00:xx:xx:xx"
};

// What a VM is made of. Paths are on the host.
struct VmSpec {
  std::string name;
  int memory_mib = 256;
  int cpus = 1;
  std::string kernel, initrd, cmdline;  // direct kernel boot when kernel is set
  bool efi = false;                     // UEFI firmware (OVMF) instead of BIOS
  DiskSpec os, app, data;
  std::vector<NicSpec> nics;  // in order; the guest sees them in this order
};

// A VM's interface as its host knows it: the MAC and the IP addresses the host's DHCP
// server leased to it (plain addresses, IPv4 first).
struct InterfaceAddresses {
  std::string mac;
  std::vector<std::string> addresses;
};

struct VmLiveState {
  bool exists = false;
  // The domain carries vdswap's marker (it was defined by vdswap). A domain of that name
  // without it belongs to someone else: vdswap never defines over, starts, stops,
  // undefines or hot-plugs it (NotManagedError).
  bool managed = false;
  bool running = false;
  std::vector<DiskSpec> disks;  // attached now (live definition when running)
  std::vector<NicSpec> nics;    // defined now

  // The attached disk with `serial`, or nullptr.
  const DiskSpec* Disk(const std::string& serial) const;
};

// kFailedPrecondition: "domain 'VM' exists and is not managed by vdswap". What every
// Hypervisor returns for a call that would change a domain vdswap did not define.
Status NotManagedError(const std::string& vm);

// The host end of a VM's guest-agent channel (kAgentChannel), carrying the JSON lines of
// protocol/agent_protocol.h. Callers use AgentClient for typed calls. One caller at a time.
class AgentChannel {
 public:
  virtual ~AgentChannel() = default;
  // Sends `op` with `fields` (an object, or null) and waits for the matching reply. Returns
  // its "result" object; an agent error keeps the agent's code, with the message prefixed
  // "agent of vm 'NAME': "; kUnavailable when no reply came in `timeout`.
  virtual Result<Json> Call(AgentOp op, const Json& fields, std::chrono::milliseconds timeout) = 0;
};

// Everything vdswap does on hosts. Speaks domain types only: no libvirt types or XML.
// Calls that change a domain (DefineAndStart over an existing one, Start, Shutdown,
// Destroy, DetachDisk, AttachDisk, OpenAgent) refuse a domain vdswap did not define with
// NotManagedError. Implementations are thread-safe; calls for different VMs may run concurrently,
// calls for one VM are serialized by the caller.
class Hypervisor {
 public:
  virtual ~Hypervisor() = default;

  // Connects to the host and makes sure its pool exists and is active. Returns the pool's
  // directory. kUnavailable when the host cannot be reached.
  virtual Result<std::string> EnsurePool(const HostRef& host) = 0;
  // The volume's path when the pool holds `volume`, else kNotFound.
  virtual Result<std::string> FindVolume(const HostRef& host, const std::string& volume) = 0;
  // Uploads a local file as a new volume and returns the number of bytes sent.
  // kAlreadyExists when the pool has a volume of that name (callers decide what may be
  // deleted: see VolumeUsers). On failure the new volume is deleted.
  virtual Result<uint64_t> UploadVolume(const HostRef& host, const std::string& volume,
                                        const std::string& local_path,
                                        const ProgressFn& progress) = 0;
  // Creates a qcow2 volume backed by `backing` (a path on the host, of `backing_format`).
  virtual Result<std::string> CreateOverlay(const HostRef& host, const std::string& volume,
                                            const std::string& backing,
                                            const std::string& backing_format) = 0;
  // Creates an empty (all-zero) qcow2 volume of `bytes`.
  virtual Result<std::string> CreateBlankVolume(const HostRef& host, const std::string& volume,
                                                uint64_t bytes) = 0;
  // Deletes a volume; a missing one is fine.
  virtual Status DeleteVolume(const HostRef& host, const std::string& volume) = 0;
  // What on the host uses `volume`: the pool's volumes backed by it (overlays) and the
  // domains that have it as a disk (live or in their definition), by name. Empty when
  // nothing does. An image volume is never deleted or overwritten while this is not empty.
  virtual Result<std::vector<std::string>> VolumeUsers(const HostRef& host,
                                                       const std::string& volume) = 0;
  // Lower-case hex SHA-256 of a volume's bytes as the host holds them (read through the
  // hypervisor, so it works for remote hosts). kNotFound for a missing volume.
  virtual Result<std::string> VolumeSha256(const HostRef& host, const std::string& volume) = 0;

  // Defines the VM persistently (replacing an earlier definition of a stopped VM) and
  // starts it.
  virtual Status DefineAndStart(const HostRef& host, const VmSpec& spec) = 0;
  // Starts a defined, stopped VM. Running already is fine.
  virtual Status Start(const HostRef& host, const std::string& vm) = 0;
  // Asks the guest to power off (ACPI) and waits up to `grace`; then forces it off.
  // Returns ok once the VM is off. A stopped VM is fine.
  virtual Status Shutdown(const HostRef& host, const std::string& vm,
                          std::chrono::milliseconds grace) = 0;
  // Forces the VM off and removes its definition and what the host keeps for it beside its
  // disks (console log, UEFI variables). Missing is fine.
  virtual Status Destroy(const HostRef& host, const std::string& vm) = 0;
  virtual Result<VmLiveState> GetState(const HostRef& host, const std::string& vm) = 0;

  // Hot-unplugs the disk with `serial` (live and persistent definitions) and waits until
  // the guest released it (device-removed event or live state), up to `timeout`:
  // kUnavailable after that. A disk that is not attached is fine.
  virtual Status DetachDisk(const HostRef& host, const std::string& vm, const std::string& serial,
                            std::chrono::milliseconds timeout) = 0;
  // Hot-plugs a disk (live and persistent). Attached already (same serial and path) is fine;
  // another disk with that serial is kFailedPrecondition.
  virtual Status AttachDisk(const HostRef& host, const std::string& vm, const DiskSpec& disk) = 0;

  // kOk when `network` is defined and active on the host; kFailedPrecondition (naming
  // the network, the host and the fix) when it is missing or inactive.
  virtual Status CheckNetwork(const HostRef& host, const std::string& network) = 0;
  // The addresses the host's DHCP server leased to the VM's interfaces, one entry per
  // interface that has a lease. kNotFound for an unknown VM.
  virtual Result<std::vector<InterfaceAddresses>> LeasedAddresses(const HostRef& host,
                                                                  const std::string& vm) = 0;
  // The last `max_bytes` of the VM's serial console log (what the guest printed since it
  // was defined). kNotFound when the VM never started on this host.
  virtual Result<std::string> ConsoleLog(const HostRef& host, const std::string& vm,
                                         uint64_t max_bytes) = 0;

  // Opens the VM's agent channel. kUnavailable when the VM is not running.
  virtual Result<std::unique_ptr<AgentChannel>> OpenAgent(const HostRef& host,
                                                          const std::string& vm) = 0;
};

}  // namespace vdswap
