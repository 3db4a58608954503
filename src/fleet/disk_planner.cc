#include "fleet/disk_planner.h"

namespace vdswap {

std::string OsOverlayVolume(const std::string& vm, int64_t version) {
  return vm + "-os-v" + std::to_string(version) + ".qcow2";
}
std::string DataVolume(const std::string& vm) { return vm + "-data.qcow2"; }

Result<TemplateDisks> DiskPlanner::Ensure(const HostRef& host, const Template& t,
                                          const ProgressFn& progress,
                                          ImageDistributor::Check check) {
  TemplateDisks d;
  ASSIGN_OR_RETURN(d.os, images_.Resolve("sha256:" + t.os_digest, ImageKind::kOs));
  ASSIGN_OR_RETURN(d.app, images_.Resolve("sha256:" + t.app_digest, ImageKind::kApp));
  ASSIGN_OR_RETURN(d.os_on_host, distributor_.Ensure(host, d.os, progress, check));
  ASSIGN_OR_RETURN(d.app_on_host, distributor_.Ensure(host, d.app, progress, check));
  return d;
}

void DiskPlanner::Recheck(const Template& t) {
  distributor_.Recheck(t.os_digest);
  distributor_.Recheck(t.app_digest);
}

Result<std::string> DiskPlanner::CreateOsOverlay(const HostRef& host, const std::string& volume,
                                                 const TemplateDisks& disks) {
  // Whatever has this name was left by an earlier attempt that did not finish.
  RETURN_IF_ERROR(hv_.DeleteVolume(host, volume));
  return hv_.CreateOverlay(host, volume, disks.os_on_host.disk,
                           disks.os.meta.value("format", "raw"));
}

Result<VmSpec> DiskPlanner::Spec(const VmRecord& vm, const HostRef& host, const Template& t,
                                 const TemplateDisks& disks, const std::string& os_volume_path) {
  ASSIGN_OR_RETURN(std::string data_path, hv_.FindVolume(host, vm.data_volume));
  VmSpec spec;
  spec.name = vm.name;
  spec.memory_mib = static_cast<int>(t.memory_mib);
  spec.cpus = static_cast<int>(t.cpus);
  spec.kernel = disks.os_on_host.kernel;
  spec.initrd = disks.os_on_host.initrd;
  spec.cmdline = disks.os.cmdline();
  spec.efi = disks.os.firmware() == "efi";
  spec.os = {kOsSerial, os_volume_path, "qcow2", false};
  spec.app = {kAppSerial, disks.app_on_host.disk, "raw", true};
  spec.data = {kDataSerial, data_path, "qcow2", false};
  spec.nics = vm.nics;  // the MACs chosen at creation, kept across OS swaps
  return spec;
}

}  // namespace vdswap
