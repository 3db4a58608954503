#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

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

// The verification rule: `what` (a volume) holds its image when the SHA-256 of its bytes
// is the one recorded when vdswapd uploaded it. Allocation is not compared: a host's
// filesystem may allocate blocks of its own (an ext4 extent index) beyond a file's bytes.
// Returns "" when it does, else what differs (naming `what` and both digests).
std::string VolumeMismatch(const std::string& what, const std::string& recorded_sha256,
                           const std::string& volume_sha256);

// Puts images on hosts, once per host. An image is uploaded only when host_images does not
// record it (or its recorded volume went missing), and recorded (volume name, SHA-256 and
// size of what was sent) only after a complete upload.
//
// Checks. A recorded disk volume is read back and compared by content (VolumeMismatch) the
// first time this daemon uses it on a host and again after Recheck (a rollout to the image
// asks for that as it starts), not on every use. Images up to
// Options::inline_check_limit are checked in the Ensure that uses them (never for
// Check::kNever, the uploads ahead of a rollout: a read-back runs in a swap's or create's
// own step); larger ones on one background thread, at most once per
// Options::background_check_every per host, while Ensure goes on with the volume.
//
// Nothing in use is deleted. A volume that does not hold its image's bytes is replaced:
// deleted and uploaded again when nothing uses it (Hypervisor::VolumeUsers), else kept
// for the overlays and domains that use it (the running QEMUs hold it; a VM started next
// opens it by name) and reported (an error in the log, host_images' bad copies: `host ls`
// and /metrics), while new users get a fresh copy under a new name. An unrecorded volume
// of the image's name (an interrupted upload, a lost record) is deleted only when unused;
// in use, it is adopted when it holds the image's bytes.
//
// Thread-safe: one lock per (host, digest), so different hosts and different images
// upload in parallel while one image goes to one host once.
class ImageDistributor {
 public:
  struct Options {
    uint64_t inline_check_limit = uint64_t{256} << 20;
    std::chrono::seconds background_check_every = std::chrono::hours(1);
  };
  ImageDistributor(HostImages& host_images, Hypervisor& hv, Clock& clock, Options options);
  ImageDistributor(HostImages& host_images, Hypervisor& hv, Clock& clock)
      : ImageDistributor(host_images, hv, clock, Options()) {}
  // Waits for the background check in progress, if any; drops the queued ones.
  ~ImageDistributor();

  // Whether Ensure may read a recorded volume back to check it (when one is due).
  enum class Check { kWhenDue, kNever };

  Result<HostImage> Ensure(const HostRef& host, const ImageInfo& image, const ProgressFn& progress,
                           Check check = Check::kWhenDue);

  // The volume name an image's disk gets on every host (a fresh copy adds "-N").
  static std::string DiskVolume(const ImageInfo& image);

  // Makes the next Ensure of image `digest` check its recorded volume on every host again.
  void Recheck(const std::string& digest);

  // Returns once the background checks queued so far have run.
  void WaitForBackgroundChecks();

 private:
  // The SHA-256 and size of an image's local disk file.
  struct LocalDisk {
    std::string sha256;
    uint64_t bytes = 0;
  };
  struct BackgroundCheck {
    HostRef host;
    ImageInfo image;
    ImageVolume volume;
  };
  using Key = std::pair<std::string, std::string>;  // (host, digest)
  struct CheckState {
    Clock::TimePoint last;  // when the last check ran (or was queued)
    bool again = false;     // Recheck asked for another
  };

  // A disk volume placed on a host: recorded by Ensure (with the bad copies found on the
  // way) once the image's boot files are there too.
  struct Placed {
    ImageVolume volume;
    bool unrecorded = false;  // uploaded or adopted now
    std::vector<BadImageCopy> bad;
  };
  Result<Placed> EnsureDisk(const HostRef& host, const ImageInfo& image,
                            const std::optional<ImageVolume>& recorded, const ProgressFn& progress,
                            Check check);
  // Uploads the image's disk as `volume` (or adopts an unrecorded one in use that holds
  // the image's bytes).
  Result<Placed> Upload(const HostRef& host, const ImageInfo& image, std::string volume,
                        const ProgressFn& progress);
  // Replaces recorded volume `bad`, which does not hold the image's bytes.
  Result<Placed> Replace(const HostRef& host, const ImageInfo& image, const ImageVolume& bad,
                         const ProgressFn& progress);
  // Checks `volume` now (small images) or queues a background check; returns what the
  // check found wrong ("" when nothing, or not yet).
  Result<std::string> CheckWhenDue(const HostRef& host, const ImageInfo& image,
                                   const ImageVolume& volume);
  Result<std::string> Mismatch(const HostRef& host, const ImageInfo& image,
                               const ImageVolume& volume);
  Result<std::string> FreshVolumeName(const HostRef& host, const ImageInfo& image);
  // A boot file's volume, uploaded when missing; with `verify`, one that does not hold the
  // file's bytes is replaced (kFailedPrecondition when in use).
  Result<std::string> EnsureFile(const HostRef& host, const std::string& volume,
                                 const std::string& local, const ProgressFn& progress, bool verify);
  Result<LocalDisk> Local(const ImageInfo& image);
  std::mutex& LockFor(const std::string& host, const std::string& digest);
  bool CheckDue(const Key& key, uint64_t bytes);
  void RunBackgroundChecks();

  HostImages& host_images_;
  Hypervisor& hv_;
  Clock& clock_;
  const Options options_;
  std::mutex locks_mu_;
  std::map<Key, std::unique_ptr<std::mutex>> locks_;
  std::mutex local_mu_;                     // local_, checked_, queue_, busy_, stop_
  std::map<std::string, LocalDisk> local_;  // by image digest
  std::map<Key, CheckState> checked_;
  std::deque<BackgroundCheck> queue_;
  bool busy_ = false;
  bool stop_ = false;
  std::condition_variable queue_cv_;
  std::thread checker_;
};

}  // namespace vdswap
