#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"
#include "hypervisor/hypervisor.h"
#include "store/db.h"

namespace vdswap {

enum class VmState { kCreating, kRunning, kStopped, kSwapping, kFailed };

// "creating", "running", "stopped", "swapping", "failed": the names the store and the API use.
std::string_view VmStateName(VmState s);
// kInvalidArgument for an unknown name.
Result<VmState> VmStateFromName(std::string_view name);

// A VM as recorded: which host, which template version it runs, its volumes.
struct VmRecord {
  std::string name;
  std::string host;
  std::string template_name;
  int64_t version = 0;
  VmState state = VmState::kCreating;
  std::string os_volume;
  std::string data_volume;
  std::string last_error;
  std::vector<NicSpec> nics;  // one per template network, MACs chosen at Insert
};

// The vms table and its NICs (vm_nics): the only code that runs SQL on them. Deleting a
// VM drops its NICs, rollout_vms and swap_journal rows through ON DELETE CASCADE.
// Thread-safe (the Db serializes).
class VmTable {
 public:
  explicit VmTable(Db& db) : db_(db) {}

  // Records a new VM with its NICs; a NIC without a MAC gets a random one that no other
  // recorded NIC has (52:54:00:xx:xx:xx). Returns the record as stored. kAlreadyExists when
  // a VM of that name exists; kFailedPrecondition when its host or template version is not
  // recorded.
  Result<VmRecord> Insert(const VmRecord& vm, int64_t created_at);
  // kNotFound naming the VM.
  Result<VmRecord> Get(const std::string& name);
  Result<bool> Exists(const std::string& name);
  // Every VM (of `template_name` when not empty), by name.
  Result<std::vector<VmRecord>> List(const std::string& template_name = "");
  // Up to `limit` VMs whose names sort after `after` ("" for the first page), by name: a
  // walk of these pages, each starting after the last name of the one before, sees every
  // VM that exists throughout the walk exactly once.
  Result<std::vector<VmRecord>> ListPage(const std::string& after, int64_t limit);
  Status SetState(const std::string& name, VmState state, const std::string& error);
  // Records that `name` runs template version `version` on `os_volume`, running, no error.
  Status SetVersion(const std::string& name, int64_t version, const std::string& os_volume);
  Status Delete(const std::string& name);
  Result<int64_t> Count();
  Result<int64_t> CountOnHost(const std::string& host);
  // (state, count) for every state some VM is in, by state name.
  Result<std::vector<std::pair<std::string, int64_t>>> CountByState();

 private:
  // Which vm_nics rows LoadNics reads: one VM's, those of the names after `after` up to
  // the last of the list's, or (neither set) all.
  struct NicScope {
    std::optional<std::string> only_vm;
    std::optional<std::string> after;
  };
  // Fills the NICs of `vms` (ordered by name) from the vm_nics rows in `scope`.
  Status LoadNics(std::vector<VmRecord>& vms, const NicScope& scope);

  Db& db_;
};

}  // namespace vdswap
