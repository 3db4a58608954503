#include "fleet/vm_table.h"

#include <random>

#include "core/enum_names.h"
#include "fleet/nics.h"

namespace vdswap {

namespace {

constexpr EnumNames<VmState, 5> kNames = {{
    {VmState::kCreating, "creating"},
    {VmState::kRunning, "running"},
    {VmState::kStopped, "stopped"},
    {VmState::kSwapping, "swapping"},
    {VmState::kFailed, "failed"},
}};

constexpr char kColumns[] =
    "name, host, template, version, state, os_volume, data_volume, last_error FROM vms";

VmRecord FromRow(const DbRow& r) {
  // A state this build does not know (a newer daemon wrote it) reads as failed, which
  // every operation treats with care.
  auto known = VmStateFromName(r.Text(4));
  VmState state = known.ok() ? *known : VmState::kFailed;
  return VmRecord{r.Text(0), r.Text(1), r.Text(2), r.Int(3),
                  state,     r.Text(5), r.Text(6), r.Text(7)};
}

std::string S(VmState s) { return std::string(VmStateName(s)); }

// A MAC collision among 24 random bits is likely somewhere in a fleet of thousands
// (birthday bound), so Insert retries with fresh bits; more than a few is a broken RNG.
constexpr int kMacAttempts = 16;

}  // namespace

std::string_view VmStateName(VmState s) { return NameOf(kNames, s); }

Result<VmState> VmStateFromName(std::string_view name) { return ValueOf(kNames, name, "vm state"); }

Result<VmRecord> VmTable::Insert(const VmRecord& vm, int64_t created_at) {
  VmRecord out = vm;
  Transaction txn(db_);
  RETURN_IF_ERROR(txn.begin_status());
  Status s = db_.Exec(
      "INSERT INTO vms (name, host, template, version, state, os_volume, data_volume, "
      "last_error, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
      {vm.name, vm.host, vm.template_name, vm.version, S(vm.state), vm.os_volume, vm.data_volume,
       vm.last_error, created_at});
  if (s.code() == Code::kAlreadyExists) return AlreadyExists("vm '" + vm.name + "' exists");
  if (s.code() == Code::kFailedPrecondition) {
    return FailedPrecondition("vm '" + vm.name + "': host '" + vm.host + "' or template '" +
                              vm.template_name + ":" + std::to_string(vm.version) +
                              "' is not recorded");
  }
  RETURN_IF_ERROR(s);
  std::random_device seed;
  std::mt19937 bits(seed());
  for (size_t i = 0; i < out.nics.size(); ++i) {
    NicSpec& nic = out.nics[i];
    const bool chosen = !nic.mac.empty();
    for (int attempt = 0;; ++attempt) {
      if (!chosen) nic.mac = MacFromBits(static_cast<uint32_t>(bits()));
      Status added = db_.Exec("INSERT INTO vm_nics (vm, idx, network, mac) VALUES (?1, ?2, ?3, ?4)",
                              {vm.name, static_cast<int64_t>(i), nic.network, nic.mac});
      if (added.ok()) break;
      if (added.code() != Code::kAlreadyExists || chosen || attempt + 1 == kMacAttempts) {
        return added.code() == Code::kAlreadyExists
                   ? AlreadyExists("vm '" + vm.name + "': MAC " + nic.mac + " is taken")
                   : added;
      }
    }
  }
  RETURN_IF_ERROR(txn.Commit());
  return out;
}

Status VmTable::LoadNics(std::vector<VmRecord>& vms, const NicScope& scope) {
  // One query per shape, so each can use the vm_nics primary key (vm, idx).
  Result<std::vector<DbRow>> rows = std::vector<DbRow>{};
  if (scope.only_vm) {
    rows = db_.Query("SELECT vm, network, mac FROM vm_nics WHERE vm = ?1 ORDER BY idx",
                     {*scope.only_vm});
  } else if (scope.after) {
    if (vms.empty()) return Status::Ok();
    rows = db_.Query(
        "SELECT vm, network, mac FROM vm_nics WHERE vm > ?1 AND vm <= ?2 ORDER BY vm, idx",
        {*scope.after, vms.back().name});
  } else {
    rows = db_.Query("SELECT vm, network, mac FROM vm_nics ORDER BY vm, idx");
  }
  RETURN_IF_ERROR(rows.status());
  // Both lists are ordered by VM name: one merge pass.
  size_t v = 0;
  for (const auto& r : *rows) {
    const std::string name = r.Text(0);
    while (v < vms.size() && vms[v].name < name) ++v;
    if (v < vms.size() && vms[v].name == name) vms[v].nics.push_back({r.Text(1), r.Text(2)});
  }
  return Status::Ok();
}

Result<VmRecord> VmTable::Get(const std::string& name) {
  ASSIGN_OR_RETURN(auto rows,
                   db_.Query(std::string("SELECT ") + kColumns + " WHERE name = ?1", {name}));
  if (rows.empty()) return NotFound("vm '" + name + "' not found");
  std::vector<VmRecord> one = {FromRow(rows[0])};
  RETURN_IF_ERROR(LoadNics(one, NicScope{name, std::nullopt}));
  return one[0];
}

Result<bool> VmTable::Exists(const std::string& name) {
  ASSIGN_OR_RETURN(auto rows, db_.Query("SELECT 1 FROM vms WHERE name = ?1", {name}));
  return !rows.empty();
}

Result<std::vector<VmRecord>> VmTable::List(const std::string& template_name) {
  Result<std::vector<DbRow>> rows =
      template_name.empty()
          ? db_.Query(std::string("SELECT ") + kColumns + " ORDER BY name")
          : db_.Query(std::string("SELECT ") + kColumns + " WHERE template = ?1 ORDER BY name",
                      {template_name});
  RETURN_IF_ERROR(rows.status());
  std::vector<VmRecord> out;
  out.reserve(rows->size());
  for (const auto& r : *rows) out.push_back(FromRow(r));
  RETURN_IF_ERROR(LoadNics(out, NicScope{}));
  return out;
}

Result<std::vector<VmRecord>> VmTable::ListPage(const std::string& after, int64_t limit) {
  ASSIGN_OR_RETURN(auto rows, db_.Query(std::string("SELECT ") + kColumns +
                                            " WHERE name > ?1 ORDER BY name LIMIT ?2",
                                        {after, limit}));
  std::vector<VmRecord> out;
  out.reserve(rows.size());
  for (const auto& r : rows) out.push_back(FromRow(r));
  RETURN_IF_ERROR(LoadNics(out, NicScope{std::nullopt, after}));
  return out;
}

Status VmTable::SetState(const std::string& name, VmState state, const std::string& error) {
  return db_.Exec("UPDATE vms SET state = ?2, last_error = ?3 WHERE name = ?1",
                  {name, S(state), error});
}

Status VmTable::SetVersion(const std::string& name, int64_t version, const std::string& os_volume) {
  return db_.Exec(
      "UPDATE vms SET version = ?2, os_volume = ?3, state = ?4, last_error = '' WHERE name = ?1",
      {name, version, os_volume, S(VmState::kRunning)});
}

Status VmTable::Delete(const std::string& name) {
  return db_.Exec("DELETE FROM vms WHERE name = ?1", {name});
}

Result<int64_t> VmTable::Count() {
  ASSIGN_OR_RETURN(auto rows, db_.Query("SELECT count(*) FROM vms"));
  return rows.at(0).Int(0);
}

Result<int64_t> VmTable::CountOnHost(const std::string& host) {
  ASSIGN_OR_RETURN(auto rows, db_.Query("SELECT count(*) FROM vms WHERE host = ?1", {host}));
  return rows.at(0).Int(0);
}

Result<std::vector<std::pair<std::string, int64_t>>> VmTable::CountByState() {
  ASSIGN_OR_RETURN(auto rows,
                   db_.Query("SELECT state, count(*) FROM vms GROUP BY state ORDER BY state"));
  std::vector<std::pair<std::string, int64_t>> out;
  for (const auto& r : rows) out.emplace_back(r.Text(0), r.Int(1));
  return out;
}

}  // namespace vdswap
