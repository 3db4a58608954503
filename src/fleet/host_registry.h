#pragma once

#include <string>
#include <vector>

#include "core/clock.h"
#include "hypervisor/hypervisor.h"
#include "store/db.h"

namespace vdswap {

// A registered host.
struct HostInfo {
  std::string name;
  std::string uri;
  std::string pool;
  std::string pool_path;
};

// The hosts table: libvirt URIs and their pools; the only code that runs SQL on it.
// A host's host_images rows go with it (CASCADE); a host with VMs cannot be removed
// (RESTRICT). Thread-safe.
class HostRegistry {
 public:
  HostRegistry(Db& db, Hypervisor& hv, Clock& clock) : db_(db), hv_(hv), clock_(clock) {}

  // Connects, creates the pool when missing, and records the host. kAlreadyExists,
  // kInvalidArgument for a bad name, kUnavailable when the host does not answer.
  Result<HostInfo> Add(const std::string& name, const std::string& uri, const std::string& pool);
  Result<HostRef> Get(const std::string& name);
  Result<std::vector<HostInfo>> List();
  Result<int64_t> Count();
  // kFailedPrecondition while VMs live on the host.
  Status Remove(const std::string& name);
  // The host VMs go to when none is named: the only one, or "local" (created on first
  // use with `default_uri` and pool "vdswap").
  Result<HostRef> Default(const std::string& default_uri);

 private:
  Db& db_;
  Hypervisor& hv_;
  Clock& clock_;
};

}  // namespace vdswap
