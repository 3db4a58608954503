#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/files.h"
#include "core/json.h"
#include "core/status.h"
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

class ImageStore;

// A private directory under STATE_DIR/tmp in which a producer (AppImageBuilder,
// OsImageImporter) makes one image for ImageStore::Record. The store's Gc spares it while
// this object lives; it is removed with everything left in it when this object dies.
// REQUIRES: the store outlives it. Move-only; not thread-safe (one producer uses it).
class ImageStaging {
 public:
  ImageStaging(ImageStaging&& o) noexcept;
  ImageStaging& operator=(ImageStaging&&) = delete;
  ImageStaging(const ImageStaging&) = delete;
  ImageStaging& operator=(const ImageStaging&) = delete;
  ~ImageStaging();

  // Scratch space for the producer (unpacked trees, copies being checked); discarded.
  const std::string& work_dir() const { return work_.path(); }
  // The image's own files, each at the path below that names it; Record keeps exactly
  // this directory. Exists, empty, when Stage returns.
  const std::string& image_dir() const { return image_dir_; }
  std::string app_disk_path() const;
  std::string os_disk_path(const std::string& format) const;
  std::string kernel_path() const;
  std::string initrd_path() const;

 private:
  friend class ImageStore;
  ImageStaging(ImageStore& store, TempDir work);

  ImageStore* store_;  // null once moved from
  TempDir work_;
  std::string image_dir_;
};

// The store of images under STATE_DIR/images, and the owner of the images table: records
// the images producers make in its staging directories, finds and deletes them. Images
// are read-only directories named by digest. Thread-safe (the database serializes
// records; each image is made in a staging directory of its own).
class ImageStore {
 public:
  // Creates STATE_DIR/images and STATE_DIR/tmp when missing.
  ImageStore(Db& db, const std::string& state_dir);

  // A new staging directory for an image of `kind`. kInternal when it cannot be created.
  Result<ImageStaging> Stage(ImageKind kind);
  // Moves the image made in `staging` (its image_dir(), flushed to disk and made
  // read-only) to STATE_DIR/images/<digest> and records it with `info`, whose dir and
  // created_at the store sets. When the digest is recorded already, returns that record
  // (and discards the staging) if it has `info`'s name and version, else kAlreadyExists
  // naming the image these bytes are. REQUIRES: `staging` came from this store's Stage;
  // `info` has the digest, kind, name, version, size and meta of what it holds.
  Result<ImageInfo> Record(ImageStaging staging, ImageInfo info);

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
  friend class ImageStaging;

  // Spares a staging directory from Gc until Unmark.
  void Mark(const std::string& work_dir);
  void Unmark(const std::string& work_dir);
  Result<ImageInfo> Load(const std::string& digest);
  // `existing` when `wanted` has its name and version, else kAlreadyExists naming it.
  static Result<ImageInfo> Same(const ImageInfo& existing, const ImageInfo& wanted);

  Db& db_;
  std::string images_dir_;
  std::string tmp_dir_;
  std::mutex active_mu_;
  std::set<std::string> active_;  // staging dirs of images being made, spared by Gc
};

std::string KindName(ImageKind kind);

}  // namespace vdswap
