#pragma once

#include <vector>

#include "core/json.h"
#include "hypervisor/hypervisor.h"
#include "store/db.h"

namespace vdswap {

// The hosts table: libvirt URIs and their pools. Thread-safe.
class HostRegistry {
 public:
  HostRegistry(Db& db, Hypervisor& hv) : db_(db), hv_(hv) {}

  // Connects, creates the pool when missing, and records the host. kAlreadyExists,
  // kInvalidArgument for a bad name, kUnavailable when the host does not answer.
  Result<Json> Add(const std::string& name, const std::string& uri, const std::string& pool);
  Result<HostRef> Get(const std::string& name);
  Result<std::vector<Json>> List();
  // kFailedPrecondition while VMs live on the host.
  Status Remove(const std::string& name);
  // The host VMs go to when none is named: the only one, or "local" (created on first
  // use with `default_uri` and pool "vdswap").
  Result<HostRef> Default(const std::string& default_uri);

 private:
  Db& db_;
  Hypervisor& hv_;
};

}  // namespace vdswap
