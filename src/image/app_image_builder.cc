#include "image/app_image_builder.h"

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "core/files.h"
#include "core/log.h"
#include "core/sha256.h"
#include "image/manifest.h"
#include "image/oci.h"

namespace fs = std::filesystem;

namespace vdswap {

namespace {

constexpr char kManifestPath[] = "vdswap.json";

// A UUID derived from the manifest identity, so that the same input gives the same bytes
// and different versions get different filesystem UUIDs.
std::string FsUuid(const AppManifest& m) {
  std::string h = Sha256::Of("vdswap-app\n" + m.name + "\n" + m.version);
  return h.substr(0, 8) + "-" + h.substr(8, 4) + "-4" + h.substr(13, 3) + "-8" + h.substr(17, 3) +
         "-" + h.substr(20, 12);
}

// Makes the EROFS image `out` of `tree` reproducibly: no timestamps, every file owned by
// root, the filesystem UUID of FsUuid.
Status MakeErofs(CommandRunner& runner, const AppManifest& manifest, const std::string& tree,
                 const std::string& out) {
  return runner
      .RunOk({"mkfs.erofs", "--quiet", "-T0", "--all-root", "-U", FsUuid(manifest), out, tree})
      .status()
      .WithContext("building app image");
}

// Follows `path` inside `root` the way the guest will see it (absolute symlinks resolve
// against root, never the host). Returns the host path, or "" when it does not resolve.
std::string ResolveInRoot(const std::string& root, const std::string& path) {
  std::vector<std::string> todo;
  auto push_parts = [&todo](const std::string& p) {
    std::vector<std::string> parts;
    size_t start = 0;
    while (start <= p.size()) {
      size_t slash = p.find('/', start);
      std::string part = p.substr(start, slash == std::string::npos ? slash : slash - start);
      if (!part.empty() && part != ".") parts.push_back(part);
      if (slash == std::string::npos) break;
      start = slash + 1;
    }
    todo.insert(todo.end(), parts.rbegin(), parts.rend());
  };
  push_parts(path);
  std::vector<std::string> done;
  for (int hops = 0; !todo.empty();) {
    std::string part = todo.back();
    todo.pop_back();
    if (part == "..") {
      if (!done.empty()) done.pop_back();
      continue;
    }
    std::string host = root;
    for (const auto& d : done) host += "/" + d;
    host += "/" + part;
    struct stat st {};
    if (lstat(host.c_str(), &st) != 0) return "";
    if (S_ISLNK(st.st_mode)) {
      if (++hops > 40) return "";
      char target[4096];
      ssize_t n = readlink(host.c_str(), target, sizeof target - 1);
      if (n <= 0) return "";
      std::string t(target, static_cast<size_t>(n));
      if (t[0] == '/') done.clear();
      push_parts(t);
      continue;
    }
    done.push_back(part);
  }
  std::string host = root;
  for (const auto& d : done) host += "/" + d;
  return host;
}

bool IsExecutableIn(const std::string& root, const std::string& path) {
  std::string host = ResolveInRoot(root, path);
  struct stat st {};
  return !host.empty() && stat(host.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
         (st.st_mode & 0111) != 0;
}

// Counts a build directory's entries and refuses what an app image must not hold.
Result<StageStats> ScanTree(const std::string& root) {
  StageStats stats;
  std::error_code ec;
  fs::recursive_directory_iterator it(root, fs::directory_options::none, ec), end;
  if (ec) return InvalidArgument("cannot read directory '" + root + "': " + ec.message());
  for (; it != end; it.increment(ec)) {
    if (ec) return InvalidArgument("cannot read '" + root + "': " + ec.message());
    auto st = it->symlink_status(ec);
    ++stats.files;
    if (fs::is_regular_file(st)) {
      stats.bytes += it->file_size(ec);
    } else if (!fs::is_directory(st) && !fs::is_symlink(st)) {
      return InvalidArgument("'" + it->path().string() +
                             "': device nodes, FIFOs and sockets are not allowed in an app image");
    }
  }
  return stats;
}

Status VerifyBlob(const std::string& path, const std::string& want_hex) {
  if (want_hex.empty()) return Status::Ok();
  auto got = Sha256::OfFile(path);
  if (!got.ok()) return InvalidArgument("image blob '" + path + "' is missing");
  if (*got != want_hex) {
    return InvalidArgument("image blob sha256:" + want_hex.substr(0, 12) +
                           " is corrupt (its bytes hash to sha256:" + got->substr(0, 12) + ")");
  }
  return Status::Ok();
}

Json StageEvent(const char* phase, const StageStats& s) {
  return {{"phase", phase},
          {"files", s.files},
          {"bytes", s.bytes},
          {"message", std::string(phase) + ": " + std::to_string(s.files) + " files, " +
                          std::to_string(s.bytes >> 20) + " MiB"}};
}

// Unpacks a docker-archive (`docker`) or oci-archive `source` into `outer` (removed
// after), checks each blob against its digest and applies its layers in order with
// `stager`; returns the image config.
Result<ImageConfig> StageArchive(const std::string& source, bool docker, const std::string& outer,
                                 const StageLimits& limits, Clock& clock, TreeStager& stager) {
  mkdir(outer.c_str(), 0755);
  TreeStager unpack(outer, limits, clock);
  RETURN_IF_ERROR(unpack.Apply(source, false));
  ImageLayout layout;
  if (docker) {
    auto text = ReadFile(outer + "/manifest.json");
    if (!text.ok()) return InvalidArgument("'" + source + "' has no manifest.json");
    ASSIGN_OR_RETURN(layout, ParseDockerManifest(*text));
  } else {
    auto index = ReadFile(outer + "/index.json");
    if (!index.ok()) return InvalidArgument("'" + source + "' has no index.json");
    ASSIGN_OR_RETURN(std::string manifest_hex, ParseOciIndex(*index));
    std::string manifest_path = outer + "/blobs/sha256/" + manifest_hex;
    RETURN_IF_ERROR(VerifyBlob(manifest_path, manifest_hex));
    ASSIGN_OR_RETURN(std::string manifest_text, ReadFile(manifest_path));
    ASSIGN_OR_RETURN(layout, ParseOciManifest(manifest_text));
  }
  RETURN_IF_ERROR(VerifyBlob(outer + "/" + layout.config_path, layout.config_digest));
  auto config_text = ReadFile(outer + "/" + layout.config_path);
  if (!config_text.ok()) {
    return InvalidArgument("image config '" + layout.config_path + "' is missing from '" + source +
                           "'");
  }
  ASSIGN_OR_RETURN(ImageConfig config, ParseImageConfig(*config_text));
  for (const auto& layer : layout.layers) {
    RETURN_IF_ERROR(VerifyBlob(outer + "/" + layer.path, layer.digest));
    RETURN_IF_ERROR(stager.Apply(outer + "/" + layer.path, /*oci_layer=*/true));
  }
  fs::remove_all(outer);
  return config;
}

// The manifest of staged `tree`: its own /vdswap.json, else one derived from the image
// `config` (written into the tree); its start command must be an executable in the tree.
Result<AppManifest> ManifestOf(const std::string& tree, const std::optional<ImageConfig>& config,
                               const AppBuildRequest& req) {
  std::string manifest_file = tree + "/" + kManifestPath;
  AppManifest manifest;
  struct stat st {};
  if (lstat(manifest_file.c_str(), &st) == 0) {
    if (!S_ISREG(st.st_mode)) return InvalidArgument("manifest: /vdswap.json is not a file");
    ASSIGN_OR_RETURN(std::string text, ReadFile(manifest_file));
    ASSIGN_OR_RETURN(manifest, ParseManifest(text));
  } else if (config) {
    if (req.name.empty()) {
      return InvalidArgument("the image has no /vdswap.json: give it a name with --name");
    }
    ASSIGN_OR_RETURN(manifest, ManifestFromConfig(*config, req.name, [&tree](const std::string& p) {
                       return IsExecutableIn(tree, p);
                     }));
    RETURN_IF_ERROR(WriteFileAtomic(manifest_file, DumpJson(ManifestToJson(manifest), 2) + "\n"));
  } else {
    return InvalidArgument("manifest: '" + req.source + "' has no /vdswap.json");
  }
  if (!IsExecutableIn(tree, manifest.start[0])) {
    return InvalidArgument("manifest: 'start[0]' is '" + manifest.start[0] +
                           "', which is not an executable file in the image");
  }
  return manifest;
}

// The tree an app image is made of, staged.
struct StagedTree {
  std::string root;  // the source directory itself, or the tree unpacked from the source
  StageStats stats;
  std::optional<ImageConfig> config;  // of a docker-archive or oci-archive
};

// Stages AppBuildRequest::source `spec`: a directory is used in place (scanned, not
// copied); a file is unpacked into `work`/root, as a docker-archive or oci-archive when
// `spec` says so, else as one tarball.
Result<StagedTree> StageSource(const std::string& spec, const std::string& work,
                               const StageLimits& limits, Clock& clock,
                               const TreeStager::ProgressFn& progress) {
  constexpr std::string_view kOci = "oci-archive:", kDocker = "docker-archive:";
  const bool is_oci = spec.rfind(kOci, 0) == 0;
  const bool is_docker = spec.rfind(kDocker, 0) == 0;
  const std::string source = is_oci      ? spec.substr(kOci.size())
                             : is_docker ? spec.substr(kDocker.size())
                                         : spec;
  struct stat st {};
  if (stat(source.c_str(), &st) != 0) {
    return InvalidArgument("source '" + source + "' does not exist");
  }
  StagedTree tree;
  if (S_ISDIR(st.st_mode) && !is_oci && !is_docker) {
    tree.root = source;  // built in place: nothing to copy
    ASSIGN_OR_RETURN(tree.stats, ScanTree(tree.root));
    return tree;
  }
  if (!S_ISREG(st.st_mode)) {
    return InvalidArgument("source '" + source + "' is neither a directory nor a file");
  }
  tree.root = work + "/root";
  mkdir(tree.root.c_str(), 0755);
  TreeStager stager(tree.root, limits, clock, progress);
  if (!is_oci && !is_docker) {
    RETURN_IF_ERROR(stager.Apply(source, /*oci_layer=*/false));
  } else {
    ASSIGN_OR_RETURN(tree.config,
                     StageArchive(source, is_docker, work + "/archive", limits, clock, stager));
  }
  tree.stats = stager.stats();
  return tree;
}

}  // namespace

AppImageBuilder::AppImageBuilder(ImageStore& store, CommandRunner& runner, Clock& clock,
                                 StageLimits limits)
    : store_(store), runner_(runner), clock_(clock), limits_(limits) {}

Result<ImageInfo> AppImageBuilder::Build(const AppBuildRequest& req,
                                         const ProgressFn& progress) const {
  if (!req.name.empty() && !IsValidName(req.name)) {
    return InvalidArgument("image name '" + req.name + "' must match [a-z0-9][a-z0-9._-]{0,62}");
  }
  ASSIGN_OR_RETURN(ImageStaging staging, store_.Stage(ImageKind::kApp));

  // Builds that take over a second report progress; quick ones stay quiet.
  const Clock::TimePoint started = clock_.Now();
  auto report = [&](const char* phase, const StageStats& s) {
    if (progress && clock_.Now() - started > std::chrono::seconds(1)) {
      progress(StageEvent(phase, s));
    }
  };
  ASSIGN_OR_RETURN(StagedTree tree,
                   StageSource(req.source, staging.work_dir(), limits_, clock_,
                               [&report](const StageStats& s) { report("staging", s); }));
  ASSIGN_OR_RETURN(AppManifest manifest, ManifestOf(tree.root, tree.config, req));
  report("building EROFS image", tree.stats);
  const int64_t stage_ms = clock_.MsSince(started);
  const std::string out = staging.app_disk_path();
  RETURN_IF_ERROR(MakeErofs(runner_, manifest, tree.root, out));
  const int64_t mkfs_ms = clock_.MsSince(started) - stage_ms;
  StartWriteback(out);  // the disk writes while the CPU hashes; Record() waits for both
  ASSIGN_OR_RETURN(std::string digest, Sha256::OfFile(out));
  VLOG(kInfo) << "app image sha256:" << digest.substr(0, 12) << " built: stage " << stage_ms
              << " ms, mkfs.erofs " << mkfs_ms << " ms, digest "
              << clock_.MsSince(started) - stage_ms - mkfs_ms << " ms";
  ImageInfo info;
  info.digest = digest;
  info.kind = ImageKind::kApp;
  info.name = req.name.empty() ? manifest.name : req.name;
  info.version = manifest.version;
  info.size_bytes = fs::file_size(out);
  info.meta = {{"manifest", ManifestToJson(manifest)}, {"files", tree.stats.files}};
  return store_.Record(std::move(staging), std::move(info));
}

}  // namespace vdswap
