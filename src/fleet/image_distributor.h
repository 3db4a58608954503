#pragma once

#include <mutex>

#include "hypervisor/hypervisor.h"
#include "image/image_store.h"
#include "store/db.h"

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
// upload; a partial upload is removed and redone. Thread-safe: uploads are serialized.
class ImageDistributor {
 public:
  ImageDistributor(Db& db, Hypervisor& hv) : db_(db), hv_(hv) {}

  Result<HostImage> Ensure(const HostRef& host, const ImageInfo& image, const ProgressFn& progress);

  // Volume names an image uses on every host.
  static std::string DiskVolume(const ImageInfo& image);

 private:
  Result<std::string> EnsureFile(const HostRef& host, const std::string& volume,
                                 const std::string& local, const ProgressFn& progress);

  Db& db_;
  Hypervisor& hv_;
  std::mutex upload_mu_;
};

}  // namespace vdswap
