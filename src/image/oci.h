#pragma once

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "image/manifest.h"

namespace vdswap {

// Where an image's config and layers are inside an unpacked docker-archive or OCI layout.
// Paths are relative to the unpacked archive's root and have no ".." component.
struct ImageLayout {
  std::string config_path;
  std::string config_digest;  // hex sha256 the config must have; empty when unknown
  struct Layer {
    std::string path;
    std::string digest;  // hex sha256 the layer blob must have; empty when unknown
  };
  std::vector<Layer> layers;  // bottom first
};

// The parts of an OCI/Docker image config that become an app manifest.
struct ImageConfig {
  std::vector<std::string> entrypoint;
  std::vector<std::string> cmd;
  std::vector<std::string> env;  // "KEY=value"
  std::string workdir;
  std::map<std::string, std::string> labels;
};

// Parsers of the archive formats' JSON documents. All return kInvalidArgument naming the
// document and field at fault; none throws.
// `docker save`'s manifest.json (the first image in it).
Result<ImageLayout> ParseDockerManifest(std::string_view text);
// An OCI index.json; returns the hex digest of its first image manifest.
Result<std::string> ParseOciIndex(std::string_view text);
// An OCI image manifest (blobs/sha256/<hex>).
Result<ImageLayout> ParseOciManifest(std::string_view text);
// An image config (OCI or Docker): the "config" object's Entrypoint, Cmd, Env, WorkingDir.
Result<ImageConfig> ParseImageConfig(std::string_view text);

// Builds an app manifest from an image config: start = Entrypoint + Cmd with argv[0]
// resolved against the config's PATH by `exists` (a path inside the image → is it an
// executable file?). kInvalidArgument when there is nothing to start.
Result<AppManifest> ManifestFromConfig(const ImageConfig& config, const std::string& name,
                                       const std::function<bool(const std::string&)>& exists);

}  // namespace vdswap
