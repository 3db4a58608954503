#include "fleet/image_distributor.h"

#include <filesystem>

#include "core/log.h"
#include "core/sha256.h"

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

Result<std::pair<std::string, uint64_t>> ImageDistributor::LocalDisk(const ImageInfo& image) {
  {
    std::lock_guard lock(local_mu_);
    if (auto it = local_.find(image.digest); it != local_.end()) return it->second;
  }
  std::error_code ec;
  const uint64_t size = std::filesystem::file_size(image.disk_path(), ec);
  if (ec) return NotFound("image file '" + image.disk_path() + "': " + ec.message());
  std::string sha;
  if (size <= kVerifyLimit) {
    ASSIGN_OR_RETURN(sha, Sha256::OfFile(image.disk_path()));
  }
  std::lock_guard lock(local_mu_);
  return local_[image.digest] = {sha, size};
}

Result<std::string> ImageDistributor::Mismatch(const HostRef& host, const std::string& volume,
                                               const ImageInfo& image) {
  ASSIGN_OR_RETURN(auto local, LocalDisk(image));
  const std::string what = "volume '" + volume + "' on host '" + host.name + "' (" +
                           KindName(image.kind) + " image " + image.name + ":" + image.version +
                           ")";
  if (local.second > kVerifyLimit) {
    ASSIGN_OR_RETURN(uint64_t allocated, hv_.VolumeAllocation(host, volume));
    if (allocated <= local.second) return std::string();
    return what + " holds " + std::to_string(allocated) + " bytes, the image " +
           std::to_string(local.second);
  }
  ASSIGN_OR_RETURN(std::string sha, hv_.VolumeSha256(host, volume));
  if (sha == local.first) return std::string();
  return what + " is corrupt: sha256 " + sha.substr(0, 16) + "..., the image's " +
         local.first.substr(0, 16) + "...";
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
                                           const ProgressFn& progress, Check check) {
  std::lock_guard lock(LockFor(host.name, image.digest));
  const std::string disk_volume = DiskVolume(image);
  const std::string boot_prefix = "os-" + image.digest.substr(0, 16);
  ASSIGN_OR_RETURN(auto recorded, host_images_.Find(host.name, image.digest));
  HostImage out;
  if (recorded) {
    // Recorded: trust it only while the volume is really there, with the image's bytes.
    auto disk = hv_.FindVolume(host, disk_volume);
    std::string mismatch;
    if (disk.ok() && check == Check::kWhenDue && !Checked(host.name, image.digest)) {
      ASSIGN_OR_RETURN(mismatch, Mismatch(host, disk_volume, image));
      if (mismatch.empty()) MarkChecked(host.name, image.digest);
      if (!mismatch.empty()) {
        VLOG(kWarning) << mismatch << ": uploading it again";
        if (progress) {
          progress({{"phase", "upload"}, {"message", mismatch + ": uploading it again"}});
        }
      }
    }
    if (disk.ok() && mismatch.empty()) {
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
  MarkChecked(host.name, image.digest);
  return out;
}

void ImageDistributor::Recheck(const std::string& digest) {
  std::lock_guard lock(local_mu_);
  std::erase_if(checked_, [&digest](const auto& entry) { return entry.second == digest; });
}

bool ImageDistributor::Checked(const std::string& host, const std::string& digest) {
  std::lock_guard lock(local_mu_);
  return checked_.count({host, digest}) != 0;
}

void ImageDistributor::MarkChecked(const std::string& host, const std::string& digest) {
  std::lock_guard lock(local_mu_);
  checked_.insert({host, digest});
}

}  // namespace vdswap
