#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/command_runner.h"
#include "core/json.h"
#include "core/progress.h"
#include "core/status.h"
#include "image/manifest.h"
#include "image/tree_stager.h"
#include "store/db.h"

namespace vdswap {

enum class ImageKind { kApp, kOs };

// An immutable, content-addressed disk image as recorded in the store.
struct ImageInfo {
  std::string digest;  // hex sha256 of the image bytes (app) or of its files (os)
  ImageKind kind = ImageKind::kApp;
  std::string name;
  std::string version;
  uint64_t size_bytes = 0;
  std::string dir;  // STATE_DIR/images/<digest>
  Json meta;        // app: {"manifest", "files"}; os: {"os_release", "format", "boot"}
  int64_t created_at = 0;

  // The disk file itself: DIR/app.erofs or DIR/os.<format>.
  std::string disk_path() const;
  // Kernel, initrd and cmdline for direct boot; empty when the OS boots from its disk.
  std::string kernel_path() const;
  std::string initrd_path() const;
  std::string cmdline() const;
  // "efi" for an OS image that boots with UEFI firmware, else "" (BIOS).
  std::string firmware() const;
  Json ToJson() const;
};

struct AppBuildRequest {
  // A directory, a tar file (any compression), "oci-archive:FILE" or "docker-archive:FILE".
  std::string source;
  std::string name;  // overrides the manifest's name as the image's name in the store
};

struct OsImportRequest {
  std::string disk;  // raw or qcow2 without a backing file
  std::string kernel, initrd, cmdline;
  std::string name;
  std::string version;  // default: os-release VERSION_ID, else "1"
  // The OS, stated by the caller where vdswap cannot read its os-release (both or none).
  std::string os_id, os_version;
  std::string firmware;  // "bios" (default, also "") or "efi" (OVMF)
};

// Builds, imports, finds and deletes images under STATE_DIR/images, recording them in
// the images table. Images are read-only files named by digest; building the same
// input twice gives the same digest. Thread-safe (the store serializes; builds use
// private staging directories).
class ImageStore {
 public:
  ImageStore(Db& db, CommandRunner& runner, std::string state_dir, StageLimits limits = {});

  // Stages the source, validates /vdswap.json (or derives it from an OCI/Docker config),
  // builds a reproducible EROFS image and records it. Building an image that exists
  // returns the existing record; the same bytes under another name are kAlreadyExists
  // naming the image they are. kInvalidArgument for bad input (nothing is left behind),
  // kInternal when mkfs.erofs fails.
  Result<ImageInfo> BuildApp(const AppBuildRequest& req, const ProgressFn& progress);

  // Copies the disk and its boot files into a staging directory (each must be a caller
  // file as image/caller_file.h defines it: absolute path, non-empty regular file, not in
  // /proc, /sys or /dev), checks the copy with `qemu-img info` (raw or qcow2, no backing
  // or external data file; a raw disk's size is a multiple of 512) and records it with
  // the os-release it finds. kInvalidArgument naming the file or field for bad input
  // (control characters in the version or cmdline too); kInternal when a copy fails.
  Result<ImageInfo> ImportOs(const OsImportRequest& req, const ProgressFn& progress);

  Result<std::vector<ImageInfo>> List();
  // REF: "sha256:<hex>", a hex digest or prefix of at least 12, or NAME[:VERSION] (the
  // newest with that name when no version). kNotFound, or kInvalidArgument when a prefix
  // is ambiguous. With `kind`, only images of that kind match.
  Result<ImageInfo> Resolve(const std::string& ref, std::optional<ImageKind> kind = {});
  // Removes the image and its host_images rows. kFailedPrecondition naming the image when
  // a template uses it (the templates table RESTRICTs it; this module never reads it).
  Status Remove(const std::string& ref);
  Result<int64_t> Count();
  // Deletes leftovers of interrupted builds and files no record points to; with
  // `unused`, also images no template uses. Returns what it removed.
  Result<Json> Gc(bool unused);

  const std::string& images_dir() const { return images_dir_; }

 private:
  // Marks a staging directory as in use, so that Gc spares it, while this lives.
  class ActiveStaging {
   public:
    ActiveStaging(ImageStore& store, std::string path);
    ~ActiveStaging();
    ActiveStaging(const ActiveStaging&) = delete;
    ActiveStaging& operator=(const ActiveStaging&) = delete;

   private:
    ImageStore& store_;
    std::string path_;
  };

  Result<ImageInfo> Record(ImageInfo info, const std::string& staged_dir);
  // The os-release of an OS disk being imported: as the request states it, else read from
  // the staged `disk` of `format`; empty (with a warning in the log and on `progress`)
  // when neither.
  OsRelease OsReleaseOf(const OsImportRequest& req, const std::string& format,
                        const std::string& disk, const ProgressFn& progress);
  Result<ImageInfo> Load(const std::string& digest);
  // `existing` when `wanted` has its name and version, else kAlreadyExists naming it.
  static Result<ImageInfo> Same(const ImageInfo& existing, const ImageInfo& wanted);

  Db& db_;
  CommandRunner& runner_;
  std::string state_dir_;
  std::string images_dir_;
  std::string tmp_dir_;
  StageLimits limits_;
  std::mutex active_mu_;
  std::set<std::string> active_;  // staging dirs of builds in progress, spared by Gc
};

std::string KindName(ImageKind kind);

}  // namespace vdswap
