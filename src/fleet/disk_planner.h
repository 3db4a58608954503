#pragma once

#include <string>

#include "fleet/image_distributor.h"
#include "fleet/template_store.h"
#include "fleet/vm_table.h"
#include "hypervisor/hypervisor.h"
#include "image/image_store.h"

namespace vdswap {

// A template version's images, resolved and present on one host.
struct TemplateDisks {
  ImageInfo os, app;
  HostImage os_on_host, app_on_host;
};

// Works out the disks of a VM: resolves a template's images and puts them on the host
// once (Ensure), then builds VmSpecs and OS overlays from that without further lookups.
// Thread-safe.
class DiskPlanner {
 public:
  DiskPlanner(ImageStore& images, ImageDistributor& distributor, Hypervisor& hv)
      : images_(images), distributor_(distributor), hv_(hv) {}

  // The images of `t`, uploaded to `host` when it lacks them. kNotFound for a missing
  // image; upload errors as the hypervisor reports them.
  Result<TemplateDisks> Ensure(const HostRef& host, const Template& t, const ProgressFn& progress,
                               ImageDistributor::Check check = ImageDistributor::Check::kWhenDue);
  // Makes the next Ensure of `t`'s images check their volumes on each host again
  // (ImageDistributor::Recheck).
  void Recheck(const Template& t);
  // Replaces volume `volume` with a fresh overlay of the OS image; returns its path.
  Result<std::string> CreateOsOverlay(const HostRef& host, const std::string& volume,
                                      const TemplateDisks& disks);
  // The VmSpec of `vm` with template `t` (whose disks are `disks`) on OS overlay
  // `os_volume_path`. kNotFound when the VM's data volume is missing.
  Result<VmSpec> Spec(const VmRecord& vm, const HostRef& host, const Template& t,
                      const TemplateDisks& disks, const std::string& os_volume_path);

 private:
  ImageStore& images_;
  ImageDistributor& distributor_;
  Hypervisor& hv_;
};

// Volume names of a VM on its host.
std::string OsOverlayVolume(const std::string& vm, int64_t version);
std::string DataVolume(const std::string& vm);

}  // namespace vdswap
