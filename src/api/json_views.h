#pragma once

#include <vector>

#include "core/json.h"
#include "fleet/host_images.h"
#include "fleet/host_registry.h"
#include "fleet/template_store.h"
#include "fleet/vm_service.h"
#include "rollout/rollout_store.h"

namespace vdswap {

// The API's JSON shapes of domain values (docs/api.md): the one place they are written,
// so routes and their contracts change together. Pure functions.

// {name, uri, pool, pool_path} and, for lists, {..., vms}.
Json HostJson(const HostInfo& h);
// With its VM count and the image volumes found not to hold their image's bytes while
// VMs used them (kept, not deleted; "bad_image_volumes").
Json HostJson(const HostInfo& h, int64_t vm_count, const std::vector<BadImageCopy>& bad_copies);
// {name, version, ref, os, app, memory_mib, cpus, data_bytes}
Json TemplateJson(const Template& t);
// {name, host, template, state, address, error}: a row of `vm ls` (`address`: the first
// leased IP, "" when none).
Json VmRowJson(const VmRecord& v, const std::string& address);
// {template, host, vms: [{name, state, error}]}
Json CreateResultJson(const CreateResult& r);
// {name, host, template, state, last_error, os_volume, data_volume, running, disks,
//  boot_id, app: {name, version, digest, healthy, state, running_version, health_output,
//  last_downtime_ms}, agent_error | hypervisor_error}
Json VmInspectionJson(const VmInspection& i);
// {id, to, state, error, created_at, updated_at, policy, counts: {STATE: N}, in_flight:
//  [VM], failures: [{vm, state, error}], eta_ms, downtime_ms: {p50, p95, max}} and with
//  `with_vms` vms: [{vm, host, state, from, to, downtime_ms, started_at_ms, finished_at_ms,
//  error}] (docs/api.md).
Json RolloutJson(const Rollout& r, bool with_vms);

}  // namespace vdswap
