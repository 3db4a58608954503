#pragma once

#include <map>
#include <memory>
#include <mutex>
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
// upload; a partial upload is removed and redone. Thread-safe: one lock per (host, digest),
// so different hosts and different images upload in parallel while one image goes to one
// host once.
class ImageDistributor {
 public:
  ImageDistributor(HostImages& host_images, Hypervisor& hv, Clock& clock)
      : host_images_(host_images), hv_(hv), clock_(clock) {}

  Result<HostImage> Ensure(const HostRef& host, const ImageInfo& image, const ProgressFn& progress);

  // Volume names an image uses on every host.
  static std::string DiskVolume(const ImageInfo& image);

 private:
  Result<std::string> EnsureFile(const HostRef& host, const std::string& volume,
                                 const std::string& local, const ProgressFn& progress);
  std::mutex& LockFor(const std::string& host, const std::string& digest);

  HostImages& host_images_;
  Hypervisor& hv_;
  Clock& clock_;
  std::mutex locks_mu_;
  std::map<std::pair<std::string, std::string>, std::unique_ptr<std::mutex>> locks_;
};

}  // namespace vdswap
