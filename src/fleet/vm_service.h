#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "fleet/host_registry.h"
#include "fleet/image_distributor.h"
#include "fleet/template_store.h"
#include "hypervisor/hypervisor.h"
#include "image/image_store.h"
#include "store/db.h"

namespace vdswap {

// A VM as recorded: which host, which template version it runs, its volumes.
struct VmRecord {
  std::string name;
  std::string host;
  std::string template_name;
  int64_t version = 0;
  std::string state;  // creating, running, stopped, swapping, failed
  std::string os_volume;
  std::string data_volume;
  std::string last_error;
};

// Linked-clone VMs: create (in parallel), list, inspect (with the guest's live view),
// start, stop, remove. Holds a lock per VM so one operation at a time touches a VM.
// Thread-safe.
class VmService {
 public:
  VmService(Db& db, Hypervisor& hv, HostRegistry& hosts, TemplateStore& templates,
            ImageStore& images, ImageDistributor& distributor, std::string default_uri);

  // Creates, boots and waits for each VM's healthy app. Returns one entry per VM
  // ({name, state, error}); VMs that fail are left in state "failed" with the reason.
  Result<Json> Create(const std::vector<std::string>& names, const std::string& template_ref,
                      const std::string& host, const ProgressFn& progress);
  Result<VmRecord> Get(const std::string& name);
  Result<std::vector<VmRecord>> List(const std::string& template_name = "");
  // The record plus what the hypervisor and the guest agent say now.
  Result<Json> Inspect(const std::string& name);
  Status Start(const std::string& name);
  Status Stop(const std::string& name);
  // Destroys the VM and its OS overlay; the data disk only with `delete_data`.
  Status Remove(const std::string& name, bool delete_data);

  // The VmSpec of `vm` running template `t` with OS overlay `os_volume` (a path),
  // uploading images to the host when it lacks them.
  Result<VmSpec> BuildSpec(const VmRecord& vm, const HostRef& host, const Template& t,
                           const std::string& os_volume_path, const ProgressFn& progress);
  // Waits until the VM's agent answers and its app is healthy; returns app.start's result.
  Result<AppStatus> AwaitHealthy(const HostRef& host, const std::string& vm,
                                 std::chrono::milliseconds timeout);
  Status SetState(const std::string& vm, const std::string& state, const std::string& error);
  // The lock serializing operations on `vm`.
  std::mutex& LockFor(const std::string& vm);

  Hypervisor& hypervisor() { return hv_; }
  HostRegistry& hosts() { return hosts_; }
  ImageStore& images() { return images_; }
  ImageDistributor& distributor() { return distributor_; }

 private:
  Status CreateOne(const std::string& name, const Template& t, const HostRef& host,
                   const ProgressFn& progress);

  Db& db_;
  Hypervisor& hv_;
  HostRegistry& hosts_;
  TemplateStore& templates_;
  ImageStore& images_;
  ImageDistributor& distributor_;
  std::string default_uri_;
  std::mutex locks_mu_;
  std::map<std::string, std::unique_ptr<std::mutex>> locks_;
};

// Volume names of a VM on its host.
std::string OsOverlayVolume(const std::string& vm, int64_t version);
std::string DataVolume(const std::string& vm);

}  // namespace vdswap
