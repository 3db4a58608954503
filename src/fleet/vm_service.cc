#include "fleet/vm_service.h"

#include <atomic>
#include <thread>

#include "core/clock.h"
#include "hypervisor/agent_client.h"
#include "image/manifest.h"

namespace vdswap {

namespace {

using std::chrono::seconds;
constexpr int kCreateParallelism = 4;
constexpr auto kBootTimeout = seconds(180);

VmRecord FromRow(const DbRow& r) {
  return VmRecord{r.Text(0), r.Text(1), r.Text(2), r.Int(3),
                  r.Text(4), r.Text(5), r.Text(6), r.Text(7)};
}

constexpr char kColumns[] =
    "name, host, template, version, state, os_volume, data_volume, last_error FROM vms";

std::string Basename(const std::string& p) {
  auto s = p.rfind('/');
  return s == std::string::npos ? p : p.substr(s + 1);
}

}  // namespace

std::string OsOverlayVolume(const std::string& vm, int64_t version) {
  return vm + "-os-v" + std::to_string(version) + ".qcow2";
}
std::string DataVolume(const std::string& vm) { return vm + "-data.qcow2"; }

VmService::VmService(Db& db, Hypervisor& hv, HostRegistry& hosts, TemplateStore& templates,
                     ImageStore& images, ImageDistributor& distributor, std::string default_uri)
    : db_(db),
      hv_(hv),
      hosts_(hosts),
      templates_(templates),
      images_(images),
      distributor_(distributor),
      default_uri_(std::move(default_uri)) {}

std::mutex& VmService::LockFor(const std::string& vm) {
  std::lock_guard lock(locks_mu_);
  auto& m = locks_[vm];
  if (!m) m = std::make_unique<std::mutex>();
  return *m;
}

Status VmService::SetState(const std::string& vm, const std::string& state,
                           const std::string& error) {
  return db_.Exec("UPDATE vms SET state = ?2, last_error = ?3 WHERE name = ?1", {vm, state, error});
}

Result<VmSpec> VmService::BuildSpec(const VmRecord& vm, const HostRef& host, const Template& t,
                                    const std::string& os_volume_path, const ProgressFn& progress) {
  ASSIGN_OR_RETURN(ImageInfo os, images_.Resolve("sha256:" + t.os_digest, ImageKind::kOs));
  ASSIGN_OR_RETURN(ImageInfo app, images_.Resolve("sha256:" + t.app_digest, ImageKind::kApp));
  ASSIGN_OR_RETURN(HostImage os_on_host, distributor_.Ensure(host, os, progress));
  ASSIGN_OR_RETURN(HostImage app_on_host, distributor_.Ensure(host, app, progress));
  ASSIGN_OR_RETURN(std::string data_path, hv_.FindVolume(host, vm.data_volume));
  VmSpec spec;
  spec.name = vm.name;
  spec.memory_mib = static_cast<int>(t.memory_mib);
  spec.cpus = static_cast<int>(t.cpus);
  spec.kernel = os_on_host.kernel;
  spec.initrd = os_on_host.initrd;
  spec.cmdline = os.cmdline();
  spec.os = {kOsSerial, os_volume_path, "qcow2", false};
  spec.app = {kAppSerial, app_on_host.disk, "raw", true};
  spec.data = {kDataSerial, data_path, "qcow2", false};
  return spec;
}

Result<AppStatus> VmService::AwaitHealthy(const HostRef& host, const std::string& vm,
                                          std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  Status last = Unavailable("vm '" + vm + "': the agent did not answer");
  while (std::chrono::steady_clock::now() < deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    auto agent = AgentClient::Open(hv_, host, vm);
    if (agent.ok()) {
      auto hello = agent->Hello(std::min(left, std::chrono::milliseconds(2000)));
      if (hello.ok()) {
        // app.start is idempotent: it waits for the app the agent started at boot.
        return agent->StartApp({}, std::max(left, std::chrono::milliseconds(1000)));
      }
      last = hello.status();
    } else {
      last = agent.status();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  return last;
}

Status VmService::CreateOne(const std::string& name, const Template& t, const HostRef& host,
                            const ProgressFn& progress) {
  std::lock_guard vm_lock(LockFor(name));
  VmRecord vm{name,
              host.name,
              t.name,
              t.version,
              "creating",
              OsOverlayVolume(name, t.version),
              DataVolume(name),
              ""};
  int64_t now = UnixSeconds();
  RETURN_IF_ERROR(db_.Exec("INSERT INTO vms (name, host, template, version, state, os_volume, "
                           "data_volume, last_error, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, "
                           "?7, '', ?8)",
                           {vm.name, vm.host, vm.template_name, vm.version, vm.state, vm.os_volume,
                            vm.data_volume, now})
                      .WithContext("vm '" + name + "'"));
  auto fail = [&](const Status& s) {
    SetState(name, "failed", s.message()).IgnoreError();
    return s;
  };
  if (progress) progress({{"phase", "create"}, {"vm", name}, {"message", "creating vm " + name}});
  ASSIGN_OR_RETURN(ImageInfo os, images_.Resolve("sha256:" + t.os_digest, ImageKind::kOs));
  auto os_on_host = distributor_.Ensure(host, os, progress);
  if (!os_on_host.ok()) return fail(os_on_host.status());
  hv_.DeleteVolume(host, vm.os_volume).IgnoreError();  // left by an earlier failed create
  auto overlay =
      hv_.CreateOverlay(host, vm.os_volume, os_on_host->disk, os.meta.value("format", "raw"));
  if (!overlay.ok()) return fail(overlay.status());
  if (!hv_.FindVolume(host, vm.data_volume).ok()) {
    auto data = hv_.CreateBlankVolume(host, vm.data_volume, static_cast<uint64_t>(t.data_bytes));
    if (!data.ok()) return fail(data.status());
  }
  auto spec = BuildSpec(vm, host, t, *overlay, progress);
  if (!spec.ok()) return fail(spec.status());
  if (Status s = hv_.DefineAndStart(host, *spec); !s.ok()) return fail(s);
  auto healthy = AwaitHealthy(host, name, kBootTimeout);
  if (!healthy.ok()) return fail(healthy.status().WithContext("vm '" + name + "'"));
  if (progress) {
    progress({{"phase", "create"}, {"vm", name}, {"message", "vm " + name + " is up and healthy"}});
  }
  return SetState(name, "running", "");
}

Result<Json> VmService::Create(const std::vector<std::string>& names,
                               const std::string& template_ref, const std::string& host_name,
                               const ProgressFn& progress) {
  if (names.empty()) return InvalidArgument("no VM names given");
  for (const auto& n : names) {
    if (!IsValidName(n)) return InvalidArgument("vm name '" + n + "' is not valid");
    ASSIGN_OR_RETURN(auto rows, db_.Query("SELECT 1 FROM vms WHERE name = ?1", {n}));
    if (!rows.empty()) return AlreadyExists("vm '" + n + "' exists");
  }
  ASSIGN_OR_RETURN(Template t, templates_.Get(template_ref));
  HostRef host;
  if (host_name.empty()) {
    ASSIGN_OR_RETURN(host, hosts_.Default(default_uri_));
  } else {
    ASSIGN_OR_RETURN(host, hosts_.Get(host_name));
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
      for (size_t i; (i = next++) < names.size();) {
        results[i] = CreateOne(names[i], t, host, safe_progress);
      }
    });
  }
  for (auto& w : workers) w.join();
  Json out = Json::array();
  Status first_error;
  for (size_t i = 0; i < names.size(); ++i) {
    out.push_back({{"name", names[i]},
                   {"state", results[i].ok() ? "running" : "failed"},
                   {"error", results[i].message()}});
    if (!results[i].ok() && first_error.ok()) first_error = results[i];
  }
  if (!first_error.ok() && names.size() == 1) return first_error;
  return Json{{"template", t.Ref()}, {"host", host.name}, {"vms", out}};
}

Result<VmRecord> VmService::Get(const std::string& name) {
  ASSIGN_OR_RETURN(auto rows,
                   db_.Query(std::string("SELECT ") + kColumns + " WHERE name = ?1", {name}));
  if (rows.empty()) return NotFound("vm '" + name + "' not found");
  return FromRow(rows[0]);
}

Result<std::vector<VmRecord>> VmService::List(const std::string& template_name) {
  ASSIGN_OR_RETURN(auto rows, db_.Query(std::string("SELECT ") + kColumns +
                                            " WHERE ?1 = '' OR template = ?1 ORDER BY name",
                                        {template_name}));
  std::vector<VmRecord> out;
  for (const auto& r : rows) out.push_back(FromRow(r));
  return out;
}

Result<Json> VmService::Inspect(const std::string& name) {
  ASSIGN_OR_RETURN(VmRecord vm, Get(name));
  ASSIGN_OR_RETURN(HostRef host, hosts_.Get(vm.host));
  Json j = {{"name", vm.name},
            {"host", vm.host},
            {"template", vm.template_name + ":" + std::to_string(vm.version)},
            {"state", vm.state},
            {"last_error", vm.last_error},
            {"os_volume", vm.os_volume},
            {"data_volume", vm.data_volume}};
  auto t = templates_.Get(vm.template_name + ":" + std::to_string(vm.version));
  Json app = Json::object();
  if (t.ok()) {
    auto image = images_.Resolve("sha256:" + t->app_digest, ImageKind::kApp);
    if (image.ok()) {
      app = {{"name", image->name},
             {"version", image->version},
             {"digest", "sha256:" + image->digest}};
    }
  }
  auto live = hv_.GetState(host, name);
  if (live.ok()) {
    j["running"] = live->running;
    Json disks = Json::object();
    for (const auto& d : live->disks) disks[d.serial] = Basename(d.path);
    j["disks"] = disks;
    if (live->running) {
      auto agent = AgentClient::Open(hv_, host, name);
      auto st = agent.ok() ? agent->GetStatus(std::chrono::seconds(5))
                           : Result<StatusReply>(agent.status());
      if (st.ok()) {
        j["boot_id"] = st->boot_id;
        app["healthy"] = st->app.healthy;
        app["state"] = AppStateName(st->app.state);
        app["running_version"] = st->app.version;
        app["health_output"] = st->app.health_output;
        if (st->app.last_downtime_ms) app["last_downtime_ms"] = *st->app.last_downtime_ms;
      } else {
        j["agent_error"] = st.status().message();
        app["healthy"] = false;
      }
    }
  } else {
    j["hypervisor_error"] = live.status().message();
  }
  j["app"] = app;
  return j;
}

Status VmService::Start(const std::string& name) {
  std::lock_guard vm_lock(LockFor(name));
  ASSIGN_OR_RETURN(VmRecord vm, Get(name));
  ASSIGN_OR_RETURN(HostRef host, hosts_.Get(vm.host));
  RETURN_IF_ERROR(hv_.Start(host, name));
  auto healthy = AwaitHealthy(host, name, kBootTimeout);
  if (!healthy.ok()) {
    SetState(name, "failed", healthy.status().message()).IgnoreError();
    return healthy.status();
  }
  return SetState(name, "running", "");
}

Status VmService::Stop(const std::string& name) {
  std::lock_guard vm_lock(LockFor(name));
  ASSIGN_OR_RETURN(VmRecord vm, Get(name));
  ASSIGN_OR_RETURN(HostRef host, hosts_.Get(vm.host));
  RETURN_IF_ERROR(hv_.Shutdown(host, name, std::chrono::seconds(60)));
  return SetState(name, "stopped", "");
}

Status VmService::Remove(const std::string& name, bool delete_data) {
  std::lock_guard vm_lock(LockFor(name));
  ASSIGN_OR_RETURN(VmRecord vm, Get(name));
  ASSIGN_OR_RETURN(HostRef host, hosts_.Get(vm.host));
  RETURN_IF_ERROR(hv_.Destroy(host, name));
  // Every overlay this VM had (an OS swap keeps the previous one for rollback).
  ASSIGN_OR_RETURN(auto versions,
                   db_.Query("SELECT version FROM templates WHERE name = ?1", {vm.template_name}));
  for (const auto& v : versions) {
    RETURN_IF_ERROR(hv_.DeleteVolume(host, OsOverlayVolume(name, v.Int(0))));
  }
  if (delete_data) RETURN_IF_ERROR(hv_.DeleteVolume(host, vm.data_volume));
  Transaction txn(db_);
  RETURN_IF_ERROR(txn.begin_status());
  RETURN_IF_ERROR(db_.Exec("DELETE FROM rollout_vms WHERE vm = ?1", {name}));
  RETURN_IF_ERROR(db_.Exec("DELETE FROM swap_journal WHERE vm = ?1", {name}));
  RETURN_IF_ERROR(db_.Exec("DELETE FROM vms WHERE name = ?1", {name}));
  return txn.Commit();
}

}  // namespace vdswap
