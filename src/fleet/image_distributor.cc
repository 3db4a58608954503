#include "fleet/image_distributor.h"

#include <filesystem>

#include "core/log.h"
#include "core/sha256.h"

namespace vdswap {

namespace {

std::string Describe(const std::string& volume, const HostRef& host, const ImageInfo& image) {
  return "volume '" + volume + "' on host '" + host.name + "' (" + KindName(image.kind) +
         " image " + image.name + ":" + image.version + ")";
}

void Report(const ProgressFn& progress, const std::string& message) {
  if (progress) progress({{"phase", "upload"}, {"message", message}});
}

}  // namespace

std::string VolumeMismatch(const std::string& what, const std::string& recorded_sha256,
                           const std::string& volume_sha256) {
  if (volume_sha256 == recorded_sha256) return "";
  return what + " is corrupt: sha256 " + volume_sha256.substr(0, 16) + "..., the image's " +
         recorded_sha256.substr(0, 16) + "...";
}

ImageDistributor::ImageDistributor(HostImages& host_images, Hypervisor& hv, Clock& clock,
                                   Options options)
    : host_images_(host_images), hv_(hv), clock_(clock), options_(options), checker_([this] {
        RunBackgroundChecks();
      }) {}

ImageDistributor::~ImageDistributor() {
  {
    std::lock_guard lock(local_mu_);
    stop_ = true;
    queue_.clear();
  }
  queue_cv_.notify_all();
  checker_.join();
}

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

Result<ImageDistributor::LocalDisk> ImageDistributor::Local(const ImageInfo& image) {
  {
    std::lock_guard lock(local_mu_);
    if (auto it = local_.find(image.digest); it != local_.end()) return it->second;
  }
  std::error_code ec;
  LocalDisk disk;
  disk.bytes = std::filesystem::file_size(image.disk_path(), ec);
  if (ec) return NotFound("image file '" + image.disk_path() + "': " + ec.message());
  // An app image's digest is its disk's SHA-256; an OS image keeps its disk's in meta
  // (images imported before that was kept are hashed once per daemon).
  disk.sha256 = image.kind == ImageKind::kApp ? image.digest : image.meta.value("disk_sha256", "");
  if (disk.sha256.empty()) {
    ASSIGN_OR_RETURN(disk.sha256, Sha256::OfFile(image.disk_path()));
  }
  std::lock_guard lock(local_mu_);
  return local_[image.digest] = disk;
}

Result<HostImage> ImageDistributor::Ensure(const HostRef& host, const ImageInfo& image,
                                           const ProgressFn& progress, Check check) {
  std::lock_guard lock(LockFor(host.name, image.digest));
  ASSIGN_OR_RETURN(auto recorded, host_images_.Find(host.name, image.digest, DiskVolume(image)));
  ASSIGN_OR_RETURN(Placed disk, EnsureDisk(host, image, recorded, progress, check));
  HostImage out;
  out.disk = disk.volume.path;
  // The disk's record, written last, vouches for the boot files: until it is written, a
  // boot file on the host may be a partial upload of an interrupted attempt.
  const std::string boot_prefix = "os-" + image.digest.substr(0, 16);
  if (!image.kernel_path().empty()) {
    ASSIGN_OR_RETURN(out.kernel, EnsureFile(host, boot_prefix + ".vmlinuz", image.kernel_path(),
                                            progress, disk.unrecorded));
  }
  if (!image.initrd_path().empty()) {
    ASSIGN_OR_RETURN(out.initrd, EnsureFile(host, boot_prefix + ".initrd", image.initrd_path(),
                                            progress, disk.unrecorded));
  }
  if (disk.unrecorded) {
    RETURN_IF_ERROR(
        host_images_.Record(host.name, image.digest, disk.volume, clock_.UnixSeconds()));
    std::lock_guard checked_lock(local_mu_);
    checked_[{host.name, image.digest}] = {clock_.Now(), false};
  }
  for (const BadImageCopy& bad : disk.bad) RETURN_IF_ERROR(host_images_.AddBadCopy(host.name, bad));
  return out;
}

Result<ImageDistributor::Placed> ImageDistributor::EnsureDisk(
    const HostRef& host, const ImageInfo& image, const std::optional<ImageVolume>& recorded,
    const ProgressFn& progress, Check check) {
  if (recorded) {
    auto path = hv_.FindVolume(host, recorded->volume);
    if (path.ok()) {
      ImageVolume v = *recorded;
      v.path = *path;
      if (v.mismatch.empty() && check == Check::kWhenDue) {
        ASSIGN_OR_RETURN(v.mismatch, CheckWhenDue(host, image, v));
      }
      if (v.mismatch.empty()) return Placed{v, false, {}};
      return Replace(host, image, v, progress);
    }
    // Deleted behind vdswapd's back: nothing can use what is gone. Upload it again.
    return Upload(host, image, recorded->volume, progress);
  }
  return Upload(host, image, DiskVolume(image), progress);
}

Result<ImageDistributor::Placed> ImageDistributor::Upload(const HostRef& host,
                                                          const ImageInfo& image,
                                                          std::string volume,
                                                          const ProgressFn& progress) {
  ASSIGN_OR_RETURN(LocalDisk local, Local(image));
  Placed placed;
  placed.unrecorded = true;
  if (hv_.FindVolume(host, volume).ok()) {
    // Not recorded: an interrupted upload, or a record that was lost (image rm and import).
    ASSIGN_OR_RETURN(auto users, hv_.VolumeUsers(host, volume));
    if (users.empty()) {
      RETURN_IF_ERROR(hv_.DeleteVolume(host, volume));
    } else {
      // Never deleted under its users. When it holds the image's bytes, it is the image.
      ASSIGN_OR_RETURN(std::string sha, hv_.VolumeSha256(host, volume));
      const std::string mismatch = VolumeMismatch(Describe(volume, host, image), local.sha256, sha);
      ASSIGN_OR_RETURN(std::string path, hv_.FindVolume(host, volume));
      if (mismatch.empty()) {
        placed.volume = {volume, path, local.sha256, local.bytes, ""};
        return placed;
      }
      VLOG(kError) << mismatch << "; " << users.size() << " overlays or domains use it ("
                   << users.front() << "...): kept; new users get a fresh copy";
      placed.bad.push_back({image.digest, volume, mismatch, clock_.UnixSeconds()});
      ASSIGN_OR_RETURN(volume, FreshVolumeName(host, image));
    }
  }
  Report(progress, "uploading " + KindName(image.kind) + " image " + image.name + ":" +
                       image.version + " to host " + host.name);
  RETURN_IF_ERROR(hv_.UploadVolume(host, volume, image.disk_path(), progress).status());
  ASSIGN_OR_RETURN(std::string path, hv_.FindVolume(host, volume));
  placed.volume = {volume, path, local.sha256, local.bytes, ""};
  return placed;
}

Result<ImageDistributor::Placed> ImageDistributor::Replace(const HostRef& host,
                                                           const ImageInfo& image,
                                                           const ImageVolume& bad,
                                                           const ProgressFn& progress) {
  ASSIGN_OR_RETURN(auto users, hv_.VolumeUsers(host, bad.volume));
  if (users.empty()) {
    VLOG(kWarning) << bad.mismatch << ": uploading it again";
    Report(progress, bad.mismatch + ": uploading it again");
    RETURN_IF_ERROR(hv_.DeleteVolume(host, bad.volume));
    return Upload(host, image, bad.volume, progress);
  }
  ASSIGN_OR_RETURN(std::string fresh, FreshVolumeName(host, image));
  VLOG(kError) << bad.mismatch << "; " << users.size() << " overlays or domains use it ("
               << users.front() << "...): kept; new users get a fresh copy, '" << fresh << "'";
  Report(progress, bad.mismatch + ": in use, kept; uploading a fresh copy as " + fresh);
  ASSIGN_OR_RETURN(Placed out, Upload(host, image, fresh, progress));
  out.bad.push_back({image.digest, bad.volume, bad.mismatch, clock_.UnixSeconds()});
  return out;
}

Result<std::string> ImageDistributor::FreshVolumeName(const HostRef& host, const ImageInfo& image) {
  const std::string base = DiskVolume(image);
  const size_t dot = base.rfind('.');
  for (int n = 2; n < 1000; ++n) {
    std::string name = base.substr(0, dot) + "-" + std::to_string(n) + base.substr(dot);
    if (!hv_.FindVolume(host, name).ok()) return name;
  }
  return Internal("no free volume name for " + Describe(base, host, image));
}

bool ImageDistributor::CheckDue(const Key& key, uint64_t bytes) {
  std::lock_guard lock(local_mu_);
  auto it = checked_.find(key);
  if (it == checked_.end()) return true;
  if (!it->second.again) return false;
  return bytes <= options_.inline_check_limit ||
         clock_.Now() - it->second.last >= options_.background_check_every;
}

Result<std::string> ImageDistributor::CheckWhenDue(const HostRef& host, const ImageInfo& image,
                                                   const ImageVolume& volume) {
  const Key key{host.name, image.digest};
  ASSIGN_OR_RETURN(LocalDisk local, Local(image));
  if (!CheckDue(key, local.bytes)) return std::string();
  if (local.bytes > options_.inline_check_limit) {
    std::lock_guard lock(local_mu_);
    checked_[key] = {clock_.Now(), false};
    queue_.push_back({host, image, volume});
    queue_cv_.notify_all();
    return std::string();
  }
  ASSIGN_OR_RETURN(std::string mismatch, Mismatch(host, image, volume));
  {
    std::lock_guard lock(local_mu_);
    checked_[key] = {clock_.Now(), false};
  }
  if (!mismatch.empty()) {
    RETURN_IF_ERROR(host_images_.SetMismatch(host.name, image.digest, mismatch));
  }
  return mismatch;
}

Result<std::string> ImageDistributor::Mismatch(const HostRef& host, const ImageInfo& image,
                                               const ImageVolume& volume) {
  std::string recorded = volume.disk_sha256;
  if (recorded.empty()) {
    ASSIGN_OR_RETURN(LocalDisk local, Local(image));
    recorded = local.sha256;
  }
  ASSIGN_OR_RETURN(std::string sha, hv_.VolumeSha256(host, volume.volume));
  return VolumeMismatch(Describe(volume.volume, host, image), recorded, sha);
}

void ImageDistributor::RunBackgroundChecks() {
  std::unique_lock lock(local_mu_);
  while (true) {
    busy_ = false;
    queue_cv_.notify_all();
    queue_cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
    if (stop_) return;
    BackgroundCheck job = std::move(queue_.front());
    queue_.pop_front();
    busy_ = true;
    lock.unlock();
    auto mismatch = Mismatch(job.host, job.image, job.volume);
    if (!mismatch.ok()) {
      VLOG(kWarning) << "cannot check " << Describe(job.volume.volume, job.host, job.image) << ": "
                     << mismatch.status().message();
    } else if (!mismatch->empty()) {
      VLOG(kError) << *mismatch;
      // Noted only while the record still names the volume that was read.
      std::lock_guard volume_lock(LockFor(job.host.name, job.image.digest));
      auto now = host_images_.Find(job.host.name, job.image.digest, DiskVolume(job.image));
      if (now.ok() && *now && (*now)->volume == job.volume.volume) {
        host_images_.SetMismatch(job.host.name, job.image.digest, *mismatch).IgnoreError();
      }
    }
    lock.lock();
  }
}

void ImageDistributor::WaitForBackgroundChecks() {
  std::unique_lock lock(local_mu_);
  queue_cv_.wait(lock, [this] { return stop_ || (queue_.empty() && !busy_); });
}

Result<std::string> ImageDistributor::EnsureFile(const HostRef& host, const std::string& volume,
                                                 const std::string& local,
                                                 const ProgressFn& progress, bool verify) {
  if (auto found = hv_.FindVolume(host, volume); found.ok()) {
    if (!verify) return found;
    ASSIGN_OR_RETURN(std::string want, Sha256::OfFile(local));
    ASSIGN_OR_RETURN(std::string have, hv_.VolumeSha256(host, volume));
    if (have == want) return found;
    ASSIGN_OR_RETURN(auto users, hv_.VolumeUsers(host, volume));
    if (!users.empty()) {
      return FailedPrecondition("volume '" + volume + "' on host '" + host.name +
                                "' does not hold the bytes of " + local + " and " + users.front() +
                                " uses it; vdswap does not delete it");
    }
    RETURN_IF_ERROR(hv_.DeleteVolume(host, volume));
  }
  RETURN_IF_ERROR(hv_.UploadVolume(host, volume, local, progress).status());
  return hv_.FindVolume(host, volume);
}

void ImageDistributor::Recheck(const std::string& digest) {
  std::lock_guard lock(local_mu_);
  for (auto& [key, state] : checked_) {
    if (key.second == digest) state.again = true;
  }
}

}  // namespace vdswap
