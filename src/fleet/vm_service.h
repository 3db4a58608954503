#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/clock.h"
#include "fleet/agent_gateway.h"
#include "fleet/disk_planner.h"
#include "fleet/host_registry.h"
#include "fleet/template_store.h"
#include "fleet/vm_locks.h"
#include "fleet/vm_table.h"
#include "hypervisor/hypervisor.h"
#include "image/image_store.h"

namespace vdswap {

// What VmService::Create did: the template and host used, and per VM its end state.
struct CreateResult {
  struct Vm {
    std::string name;
    VmState state = VmState::kFailed;  // kRunning or kFailed
    std::string error;
  };
  std::string template_ref;
  std::string host;
  std::vector<Vm> vms;
};

// A VM's record plus what its template, the hypervisor and the guest agent say now.
struct VmInspection {
  struct AppImage {
    std::string name, version, digest;  // digest as "sha256:..."
  };
  struct Guest {
    std::string boot_id;
    bool healthy = false;
    AppState app_state = AppState::kStopped;
    std::string running_version, health_output;
    std::optional<int64_t> last_downtime_ms;
    // The OS the guest runs, as its agent reports it (os-release ID, VERSION_ID,
    // IMAGE_VERSION), each "(invalid)" when it is not a well-formed name or version.
    std::string os_id, os_version, os_image_version;
  };
  // A NIC with the addresses its host's DHCP server leased to it (IPv4 first).
  struct Interface {
    std::string network, mac;
    std::vector<std::string> addresses;
  };
  VmRecord vm;
  std::vector<Interface> interfaces;  // every NIC, addresses only while the VM runs
  std::optional<AppImage> app_image;  // unset when the template or image is gone
  Status hypervisor_status;           // why `live` is unknown, when it is
  VmLiveState live;
  Status agent_status;         // why `guest` is unknown while the VM runs
  std::optional<Guest> guest;  // set when the VM runs and its agent answered
};

// Linked-clone VMs: create (in parallel), list, inspect (with the guest's live view),
// start, stop, remove. One operation at a time touches a VM (VmLocks). Thread-safe.
class VmService {
 public:
  VmService(VmTable& vms, VmLocks& locks, HostRegistry& hosts, TemplateStore& templates,
            ImageStore& images, DiskPlanner& disks, AgentGateway& agent, Hypervisor& hv,
            Clock& clock, std::string default_uri);

  // Creates, boots and waits for each VM's healthy app. VMs that fail are left in state
  // failed with the reason; with one VM its error is returned instead. Once `cancelled`
  // (optional) turns true, no further VM is started: those started are finished, then
  // kUnavailable says how many were created.
  Result<CreateResult> Create(const std::vector<std::string>& names,
                              const std::string& template_ref, const std::string& host,
                              const ProgressFn& progress,
                              const std::function<bool()>& cancelled = nullptr);
  Result<VmRecord> Get(const std::string& name);
  Result<std::vector<VmRecord>> List(const std::string& template_name = "");
  // The record, the domain's live state and, when the VM runs, its agent's view. A read
  // never cuts into an operation on the VM: while one (a swap, a create) holds the VM for
  // longer than a moment, the agent is not called and agent_status says the VM is busy.
  Result<VmInspection> Inspect(const std::string& name);
  // The first leased address of a running VM's NICs, "" when it has none (yet).
  std::string FirstAddress(const VmRecord& vm);
  // The last `max_bytes` of the VM's serial console log. kNotFound for an unknown VM.
  Result<std::string> Console(const std::string& name, uint64_t max_bytes);
  Status Start(const std::string& name);
  Status Stop(const std::string& name);
  // Destroys the VM and its OS overlays; the data disk only with `delete_data`. Its
  // rollout and journal rows go with its record.
  Status Remove(const std::string& name, bool delete_data);
  // Settles the VMs a stopped daemon left in state creating, from what their host says:
  //  - a domain vdswap defined exists: the create got that far, so the VM is recorded
  //    running or stopped as its domain is (`vm inspect` shows its app's health);
  //  - no domain, or only one vdswap did not define: the record and the VM's OS overlay
  //    (made for this VM alone, never booted) are removed, so a new `vm create` of the
  //    name starts afresh. The data volume stays: a create reuses the data volume an
  //    earlier VM of that name left, so it may hold someone's data;
  //  - the host cannot be asked: recorded failed with the reason (`vm rm` removes it).
  // Returns how many VMs it settled. REQUIRES: no Create runs (the daemon calls it before
  // it serves its API).
  Result<int> ReconcileCreating();

 private:
  // `vm`'s NICs with the addresses its host leased to them.
  std::vector<VmInspection::Interface> Interfaces(const VmRecord& vm, const HostRef& host);
  Status CreateOne(const std::string& name, const Template& t, const HostRef& host,
                   const ProgressFn& progress);
  // ReconcileCreating for one VM. REQUIRES: its lock held.
  Status SettleCreating(const VmRecord& vm);

  VmTable& vms_;
  VmLocks& locks_;
  HostRegistry& hosts_;
  TemplateStore& templates_;
  ImageStore& images_;
  DiskPlanner& disks_;
  AgentGateway& agent_;
  Hypervisor& hv_;
  Clock& clock_;
  std::string default_uri_;
};

}  // namespace vdswap
