#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <utility>

#include "core/clock.h"
#include "fleet/host_images.h"
#include "hypervisor/hypervisor.h"
#include "image/image_store.h"

namespace vdswap {

// Where an image lives on a host: its disk volume and, for OS images with direct boot,
// kernel and initrd volumes.
struct HostImage {
  std::string disk;
  std::string kernel;
  std::string initrd;
};

// Puts images on hosts, once per host: an image is uploaded only when host_images does
// not record it (or the recorded volume went missing), and recorded only after a complete
// upload; a partial upload is removed and redone. A recorded disk volume is checked against
// the image (SHA-256, read through the hypervisor; images over kVerifyLimit by size only)
// the first time this daemon uses it on a host and again after Recheck (a rollout to the
// image asks for that as it starts), not on every use: reading a volume back for each of
// a host's VMs would cost more than the swaps. One that differs (a bad disk, a hand edit)
// is forgotten, deleted and uploaded again, with a warning. Checks run in the swap's or
// create's own Ensure (Check::kNever for uploads ahead of time), so a recorded volume is
// read back before the step that uses it, never beside a step in flight. Thread-safe: one lock per
// (host, digest), so different hosts and different images upload in parallel while one
// image goes to one host once.
class ImageDistributor {
 public:
  ImageDistributor(HostImages& host_images, Hypervisor& hv, Clock& clock)
      : host_images_(host_images), hv_(hv), clock_(clock) {}

  // Whether Ensure may read a recorded volume back to check it (when one is due).
  enum class Check { kWhenDue, kNever };

  Result<HostImage> Ensure(const HostRef& host, const ImageInfo& image, const ProgressFn& progress,
                           Check check = Check::kWhenDue);

  // Volume names an image uses on every host.
  static std::string DiskVolume(const ImageInfo& image);

  // Makes the next Ensure of image `digest` check its recorded volume on every host again.
  void Recheck(const std::string& digest);

  // Disk images up to this size are verified byte for byte.
  static constexpr uint64_t kVerifyLimit = uint64_t{256} << 20;

 private:
  // "" when the host's `volume` holds the image's disk bytes, else what differs (naming
  // the volume, the host, the image and both digests or sizes).
  Result<std::string> Mismatch(const HostRef& host, const std::string& volume,
                               const ImageInfo& image);
  // SHA-256 and size of the image's local disk file (read once per image).
  Result<std::pair<std::string, uint64_t>> LocalDisk(const ImageInfo& image);
  Result<std::string> EnsureFile(const HostRef& host, const std::string& volume,
                                 const std::string& local, const ProgressFn& progress);
  std::mutex& LockFor(const std::string& host, const std::string& digest);
  bool Checked(const std::string& host, const std::string& digest);
  void MarkChecked(const std::string& host, const std::string& digest);

  HostImages& host_images_;
  Hypervisor& hv_;
  Clock& clock_;
  std::mutex locks_mu_;
  std::map<std::pair<std::string, std::string>, std::unique_ptr<std::mutex>> locks_;
  std::mutex local_mu_;
  std::map<std::string, std::pair<std::string, uint64_t>> local_;  // image digest -> disk
  std::set<std::pair<std::string, std::string>> checked_;          // (host, digest) found intact
};

}  // namespace vdswap
