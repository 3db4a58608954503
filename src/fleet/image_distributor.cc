#include "fleet/image_distributor.h"

namespace vdswap {

std::mutex& ImageDistributor::LockFor(const std::string& host, const std::string& digest) {
  std::lock_guard lock(locks_mu_);
  auto& m = locks_[{host, digest}];
  if (!m) m = std::make_unique<std::mutex>();
  return *m;
}

std::string ImageDistributor::DiskVolume(const ImageInfo& image) {
  std::string id = image.digest.substr(0, 16);
  if (image.kind == ImageKind::kApp) return "app-" + id + ".erofs";
  return "os-" + id + "." + image.meta.value("format", "raw");
}

Result<std::string> ImageDistributor::EnsureFile(const HostRef& host, const std::string& volume,
                                                 const std::string& local,
                                                 const ProgressFn& progress) {
  auto found = hv_.FindVolume(host, volume);
  if (found.ok()) return found;
  RETURN_IF_ERROR(hv_.UploadVolume(host, volume, local, progress).status());
  return hv_.FindVolume(host, volume);
}

Result<HostImage> ImageDistributor::Ensure(const HostRef& host, const ImageInfo& image,
                                           const ProgressFn& progress) {
  std::lock_guard lock(LockFor(host.name, image.digest));
  const std::string disk_volume = DiskVolume(image);
  const std::string boot_prefix = "os-" + image.digest.substr(0, 16);
  ASSIGN_OR_RETURN(auto recorded, host_images_.Find(host.name, image.digest));
  HostImage out;
  if (recorded) {
    // Recorded: trust it only while the volume is really there.
    auto disk = hv_.FindVolume(host, disk_volume);
    if (disk.ok()) {
      out.disk = *disk;
      if (!image.kernel_path().empty()) {
        ASSIGN_OR_RETURN(out.kernel, hv_.FindVolume(host, boot_prefix + ".vmlinuz"));
      }
      if (!image.initrd_path().empty()) {
        ASSIGN_OR_RETURN(out.initrd, hv_.FindVolume(host, boot_prefix + ".initrd"));
      }
      return out;
    }
    RETURN_IF_ERROR(host_images_.Forget(host.name, image.digest));
  }
  // Not recorded: whatever volume exists may be a partial upload. Start over.
  RETURN_IF_ERROR(hv_.DeleteVolume(host, disk_volume));
  if (progress) {
    progress({{"phase", "upload"},
              {"message", "uploading " + KindName(image.kind) + " image " + image.name + ":" +
                              image.version + " to host " + host.name}});
  }
  RETURN_IF_ERROR(hv_.UploadVolume(host, disk_volume, image.disk_path(), progress).status());
  ASSIGN_OR_RETURN(out.disk, hv_.FindVolume(host, disk_volume));
  if (!image.kernel_path().empty()) {
    ASSIGN_OR_RETURN(out.kernel,
                     EnsureFile(host, boot_prefix + ".vmlinuz", image.kernel_path(), progress));
  }
  if (!image.initrd_path().empty()) {
    ASSIGN_OR_RETURN(out.initrd,
                     EnsureFile(host, boot_prefix + ".initrd", image.initrd_path(), progress));
  }
  RETURN_IF_ERROR(host_images_.Record(host.name, image.digest, out.disk, clock_.UnixSeconds()));
  return out;
}

}  // namespace vdswap
