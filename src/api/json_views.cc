#include "api/json_views.h"

#include <algorithm>

namespace vdswap {

namespace {

std::string Basename(const std::string& p) {
  auto s = p.rfind('/');
  return s == std::string::npos ? p : p.substr(s + 1);
}

std::string Name(VmState s) { return std::string(VmStateName(s)); }

// Nearest-rank percentile of sorted values.
int64_t Percentile(const std::vector<int64_t>& sorted, int p) {
  if (sorted.empty()) return 0;
  size_t rank = (static_cast<size_t>(p) * sorted.size() + 99) / 100;
  return sorted[std::max<size_t>(rank, 1) - 1];
}

}  // namespace

Json HostJson(const HostInfo& h) {
  return {{"name", h.name}, {"uri", h.uri}, {"pool", h.pool}, {"pool_path", h.pool_path}};
}

Json HostJson(const HostInfo& h, int64_t vm_count, const std::vector<BadImageCopy>& bad_copies) {
  Json j = HostJson(h);
  j["vms"] = vm_count;
  Json bad = Json::array();
  for (const auto& c : bad_copies) {
    bad.push_back({{"volume", c.volume},
                   {"image", "sha256:" + c.digest},
                   {"detail", c.detail},
                   {"found_at", c.found_at}});
  }
  j["bad_image_volumes"] = std::move(bad);
  return j;
}

Json TemplateJson(const Template& t) {
  return {{"name", t.name},
          {"version", t.version},
          {"ref", t.Ref()},
          {"os", "sha256:" + t.os_digest},
          {"app", "sha256:" + t.app_digest},
          {"memory_mib", t.memory_mib},
          {"cpus", t.cpus},
          {"data_bytes", t.data_bytes},
          {"networks", t.networks}};
}

Json VmRowJson(const VmRecord& v, const std::string& address) {
  return {{"name", v.name},
          {"host", v.host},
          {"template", v.template_name + ":" + std::to_string(v.version)},
          {"state", Name(v.state)},
          {"address", address},
          {"error", v.last_error}};
}

Json CreateResultJson(const CreateResult& r) {
  Json vms = Json::array();
  for (const auto& v : r.vms) {
    vms.push_back({{"name", v.name}, {"state", Name(v.state)}, {"error", v.error}});
  }
  return {{"template", r.template_ref}, {"host", r.host}, {"vms", vms}};
}

Json VmInspectionJson(const VmInspection& i) {
  const VmRecord& vm = i.vm;
  Json j = {{"name", vm.name},
            {"host", vm.host},
            {"template", vm.template_name + ":" + std::to_string(vm.version)},
            {"state", Name(vm.state)},
            {"last_error", vm.last_error},
            {"os_volume", vm.os_volume},
            {"data_volume", vm.data_volume}};
  Json interfaces = Json::array();
  for (const auto& nic : i.interfaces) {
    interfaces.push_back(
        {{"network", nic.network}, {"mac", nic.mac}, {"addresses", nic.addresses}});
  }
  j["interfaces"] = interfaces;
  Json app = Json::object();
  if (i.app_image) {
    app = {{"name", i.app_image->name},
           {"version", i.app_image->version},
           {"digest", i.app_image->digest}};
  }
  if (i.hypervisor_status.ok()) {
    j["running"] = i.live.running;
    Json disks = Json::object();
    for (const auto& d : i.live.disks) disks[d.serial] = Basename(d.path);
    j["disks"] = disks;
    if (i.live.running) {
      if (i.guest) {
        j["boot_id"] = i.guest->boot_id;
        app["healthy"] = i.guest->healthy;
        app["state"] = AppStateName(i.guest->app_state);
        app["running_version"] = i.guest->running_version;
        app["health_output"] = i.guest->health_output;
        if (i.guest->last_downtime_ms) app["last_downtime_ms"] = *i.guest->last_downtime_ms;
        j["os"] = {{"id", i.guest->os_id},
                   {"version", i.guest->os_version},
                   {"image_version", i.guest->os_image_version}};
      } else {
        j["agent_error"] = i.agent_status.message();
        app["healthy"] = false;
      }
    }
  } else {
    j["hypervisor_error"] = i.hypervisor_status.message();
  }
  j["app"] = app;
  return j;
}

Json RolloutJson(const Rollout& r, bool with_vms) {
  Json j = {{"id", r.id},
            {"to", r.template_name + ":" + std::to_string(r.to_version)},
            {"state", std::string(RolloutStateName(r.state))},
            {"error", r.error},
            {"created_at", r.created_at},
            {"updated_at", r.updated_at},
            {"policy", PolicyToJson(r.policy)}};
  auto ref = [&r](int64_t version) { return r.template_name + ":" + std::to_string(version); };
  auto opt = [](const std::optional<int64_t>& v) { return v ? Json(*v) : Json(); };
  Json list = Json::array();
  Json counts = Json::object();
  Json in_flight = Json::array();
  Json failures = Json::array();
  std::vector<int64_t> downtimes;
  int64_t finished = 0, finished_ms = 0, remaining = 0;
  for (const auto& v : r.vms) {
    const std::string state(RolloutVmStateName(v.state));
    counts[state] = counts.value(state, 0) + 1;
    if (v.state == RolloutVmState::kSwapping) in_flight.push_back(v.vm);
    if (v.state == RolloutVmState::kPending || v.state == RolloutVmState::kSwapping) ++remaining;
    if (v.state == RolloutVmState::kRolledBack || v.state == RolloutVmState::kFailed ||
        (v.state == RolloutVmState::kReverted && !v.error.empty())) {
      failures.push_back({{"vm", v.vm}, {"state", state}, {"error", v.error}});
    }
    if (v.started_at_ms && v.finished_at_ms) {
      ++finished;
      finished_ms += *v.finished_at_ms - *v.started_at_ms;
    }
    if (with_vms) {
      list.push_back({{"vm", v.vm},
                      {"host", v.host},
                      {"state", state},
                      {"from", ref(v.from_version)},
                      {"to", ref(v.to_version)},
                      {"downtime_ms", opt(v.downtime_ms)},
                      {"started_at_ms", opt(v.started_at_ms)},
                      {"finished_at_ms", opt(v.finished_at_ms)},
                      {"error", v.error}});
    }
    if (v.downtime_ms) downtimes.push_back(*v.downtime_ms);
  }
  std::sort(downtimes.begin(), downtimes.end());
  j["counts"] = counts;
  j["in_flight"] = in_flight;
  j["failures"] = failures;
  // Remaining VMs at the mean swap time so far, `batch` at a time; null before any VM ended
  // and once the rollout no longer runs.
  Json eta;
  if (r.state == RolloutState::kRunning && finished > 0) {
    const int64_t batch = std::max<int64_t>(
        1, r.policy.batch.Of(static_cast<int64_t>(r.vms.size()), /*at_least_one=*/true));
    eta = (remaining + batch - 1) / batch * (finished_ms / finished);
  }
  j["eta_ms"] = eta;
  if (with_vms) j["vms"] = list;
  j["downtime_ms"] = {{"p50", Percentile(downtimes, 50)},
                      {"p95", Percentile(downtimes, 95)},
                      {"max", downtimes.empty() ? 0 : downtimes.back()}};
  return j;
}

}  // namespace vdswap
