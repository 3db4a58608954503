#pragma once

#include <string>

#include "core/clock.h"
#include "core/command_runner.h"
#include "core/progress.h"
#include "core/status.h"
#include "image/image_store.h"
#include "image/tree_stager.h"

namespace vdswap {

struct AppBuildRequest {
  // A directory, a tar file (any compression), "oci-archive:FILE" or "docker-archive:FILE".
  std::string source;
  std::string name;  // overrides the manifest's name as the image's name in the store
};

// Makes app images and records them in an ImageStore. A directory source is used in
// place; a tarball is unpacked, and a docker-archive or oci-archive has each blob checked
// against its digest and its layers applied in order, by TreeStager (within `limits`)
// into one of the store's staging directories. The tree's /vdswap.json is the manifest,
// else one derived from the OCI/Docker image config is written into it. mkfs.erofs makes
// the image reproducibly: building the same input twice gives the same digest.
// Thread-safe: builds share only the store, the runner and the clock.
class AppImageBuilder {
 public:
  // `clock` times the build (progress, the log's phase durations).
  AppImageBuilder(ImageStore& store, CommandRunner& runner, Clock& clock, StageLimits limits = {});

  // Builds the image and records it (ImageStore::Record: an image that exists is returned
  // as it is; the same bytes under another name are kAlreadyExists naming the image they
  // are). kInvalidArgument for bad input (nothing is left behind), kInternal when
  // mkfs.erofs fails. A build that runs over a second reports its phases on `progress`.
  Result<ImageInfo> Build(const AppBuildRequest& req, const ProgressFn& progress) const;

 private:
  ImageStore& store_;
  CommandRunner& runner_;
  Clock& clock_;
  StageLimits limits_;
};

}  // namespace vdswap
