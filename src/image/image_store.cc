#include "image/image_store.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <utility>

#include "core/clock.h"
#include "core/enum_names.h"

namespace fs = std::filesystem;

namespace vdswap {

namespace {

// The files of an image directory (docs/architecture.md: images under
// STATE_DIR/images/<digest>/), named here only.
constexpr char kAppFile[] = "app.erofs";
constexpr char kKernelFile[] = "vmlinuz";
constexpr char kInitrdFile[] = "initrd.img";
std::string OsDiskFile(const std::string& format) { return "os." + format; }

constexpr EnumNames<ImageKind, 2> kKinds = {{{ImageKind::kApp, "app"}, {ImageKind::kOs, "os"}}};

}  // namespace

std::string KindName(ImageKind kind) { return std::string(NameOf(kKinds, kind)); }

std::string ImageInfo::disk_path() const {
  if (kind == ImageKind::kApp) return dir + "/" + kAppFile;
  return dir + "/" + OsDiskFile(meta.value("format", "raw"));
}
std::string ImageInfo::kernel_path() const {
  return meta.contains("boot") && meta["boot"].value("kernel", false) ? dir + "/" + kKernelFile
                                                                      : "";
}
std::string ImageInfo::initrd_path() const {
  return meta.contains("boot") && meta["boot"].value("initrd", false) ? dir + "/" + kInitrdFile
                                                                      : "";
}
std::string ImageInfo::cmdline() const {
  return meta.contains("boot") ? meta["boot"].value("cmdline", "") : "";
}

std::string ImageInfo::firmware() const {
  return meta.contains("boot") ? meta["boot"].value("firmware", "") : "";
}

Json ImageInfo::ToJson() const {
  Json j = {{"digest", "sha256:" + digest}, {"kind", KindName(kind)},   {"name", name},
            {"version", version},           {"size_bytes", size_bytes}, {"path", disk_path()},
            {"created_at", created_at}};
  for (const auto& [k, v] : meta.items()) j[k] = v;
  return j;
}

ImageStaging::ImageStaging(ImageStore& store, TempDir work)
    : store_(&store), work_(std::move(work)), image_dir_(work_.path() + "/image") {
  store_->Mark(work_.path());
}

ImageStaging::ImageStaging(ImageStaging&& o) noexcept
    : store_(std::exchange(o.store_, nullptr)),
      work_(std::move(o.work_)),
      image_dir_(std::move(o.image_dir_)) {}

ImageStaging::~ImageStaging() {
  if (store_ != nullptr) store_->Unmark(work_.path());
}

std::string ImageStaging::app_disk_path() const { return image_dir_ + "/" + kAppFile; }
std::string ImageStaging::os_disk_path(const std::string& format) const {
  return image_dir_ + "/" + OsDiskFile(format);
}
std::string ImageStaging::kernel_path() const { return image_dir_ + "/" + kKernelFile; }
std::string ImageStaging::initrd_path() const { return image_dir_ + "/" + kInitrdFile; }

ImageStore::ImageStore(Db& db, const std::string& state_dir)
    : db_(db), images_dir_(state_dir + "/images"), tmp_dir_(state_dir + "/tmp") {
  std::error_code ec;
  fs::create_directories(images_dir_, ec);
  fs::create_directories(tmp_dir_, ec);
}

Result<ImageStaging> ImageStore::Stage(ImageKind kind) {
  ASSIGN_OR_RETURN(TempDir work,
                   TempDir::Create(tmp_dir_, kind == ImageKind::kApp ? "build" : "import"));
  ImageStaging staging(*this, std::move(work));
  if (mkdir(staging.image_dir().c_str(), 0755) != 0) {
    return Internal("cannot create '" + staging.image_dir() + "': " + strerror(errno));
  }
  return staging;
}

void ImageStore::Mark(const std::string& work_dir) {
  std::lock_guard lock(active_mu_);
  active_.insert(work_dir);
}

void ImageStore::Unmark(const std::string& work_dir) {
  std::lock_guard lock(active_mu_);
  active_.erase(work_dir);
}

Result<ImageInfo> ImageStore::Record(ImageStaging staging, ImageInfo info) {
  const std::string& staged_dir = staging.image_dir();
  auto existing = Load(info.digest);
  if (existing.ok()) return Same(*existing, info);
  info.dir = images_dir_ + "/" + info.digest;
  info.created_at = UnixSeconds();
  // The bytes reach the disk before the name, and the name before the record: after a
  // crash, a recorded image is whole, and an unrecorded one is an orphan for Gc().
  std::error_code ec;
  for (const auto& f : fs::directory_iterator(staged_dir, ec)) {
    chmod(f.path().c_str(), 0444);
    RETURN_IF_ERROR(SyncPath(f.path()));
  }
  chmod(staged_dir.c_str(), 0555);
  RETURN_IF_ERROR(SyncPath(staged_dir));
  if (rename(staged_dir.c_str(), info.dir.c_str()) != 0) {
    if (errno == EEXIST || errno == ENOTEMPTY) {
      // A concurrent build of the same bytes won the race; its record is the truth.
      auto other = Load(info.digest);
      if (other.ok()) return Same(*other, info);
    }
    return Internal("cannot move image into '" + info.dir + "': " + strerror(errno));
  }
  Status s = SyncPath(images_dir_);
  if (!s.ok()) {
    fs::remove_all(info.dir, ec);
    return s;
  }
  s = db_.Exec(
      "INSERT INTO images (digest, kind, name, version, size_bytes, path, meta, created_at) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
      {info.digest, KindName(info.kind), info.name, info.version,
       static_cast<int64_t>(info.size_bytes), info.dir, DumpJson(info.meta), info.created_at});
  if (!s.ok()) {
    fs::remove_all(info.dir, ec);
    return s;
  }
  return info;
}

// An image is stored once, under one name and version: the same bytes again are the
// existing image; under another name or version they are refused rather than silently
// answered with a record whose name the caller did not ask for.
Result<ImageInfo> ImageStore::Same(const ImageInfo& existing, const ImageInfo& wanted) {
  if (existing.name == wanted.name && existing.version == wanted.version) return existing;
  return AlreadyExists("these bytes are already image '" + existing.name + ":" + existing.version +
                       "' (sha256:" + existing.digest.substr(0, 12) +
                       "); use that name or the digest instead of '" + wanted.name + ":" +
                       wanted.version + "'");
}

Result<ImageInfo> ImageStore::Load(const std::string& digest) {
  ASSIGN_OR_RETURN(auto rows, db_.Query("SELECT digest, kind, name, version, size_bytes, path, "
                                        "meta, created_at FROM images WHERE digest = ?1",
                                        {digest}));
  if (rows.empty()) return NotFound("image sha256:" + digest.substr(0, 12) + " not found");
  const DbRow& r = rows[0];
  ImageInfo info;
  info.digest = r.Text(0);
  info.kind = FindValue(kKinds, r.Text(1)).value_or(ImageKind::kOs);
  info.name = r.Text(2);
  info.version = r.Text(3);
  info.size_bytes = static_cast<uint64_t>(r.Int(4));
  info.dir = r.Text(5);
  auto meta = ParseJson(r.Text(6), "image meta");
  info.meta = meta.ok() ? *meta : Json::object();
  info.created_at = r.Int(7);
  return info;
}

Result<std::vector<ImageInfo>> ImageStore::List() {
  ASSIGN_OR_RETURN(auto rows, db_.Query("SELECT digest FROM images ORDER BY created_at, name"));
  std::vector<ImageInfo> out;
  for (const auto& r : rows) {
    ASSIGN_OR_RETURN(ImageInfo info, Load(r.Text(0)));
    out.push_back(std::move(info));
  }
  return out;
}

Result<ImageInfo> ImageStore::Resolve(const std::string& ref, std::optional<ImageKind> kind) {
  std::string r = ref;
  bool explicit_digest = r.rfind("sha256:", 0) == 0;
  if (explicit_digest) r = r.substr(7);
  bool hex = !r.empty() && r.find_first_not_of("0123456789abcdef") == std::string::npos;
  std::string kind_sql = kind ? " AND kind = '" + KindName(*kind) + "'" : "";
  std::string what = kind ? KindName(*kind) + " image" : "image";
  if (explicit_digest || (hex && r.size() >= 12)) {
    if (!hex || r.size() < 12) {
      return InvalidArgument("digest '" + ref + "' needs at least 12 hex digits");
    }
    ASSIGN_OR_RETURN(auto rows, db_.Query("SELECT digest FROM images WHERE substr(digest, 1, ?2) "
                                          "= ?1" +
                                              kind_sql + " LIMIT 2",
                                          {r, static_cast<int64_t>(r.size())}));
    if (rows.size() > 1) return InvalidArgument("digest prefix '" + ref + "' is ambiguous");
    if (rows.size() == 1) return Load(rows[0].Text(0));
    if (explicit_digest) return NotFound(what + " '" + ref + "' not found");
  }
  auto colon = ref.rfind(':');
  std::string name = colon == std::string::npos ? ref : ref.substr(0, colon);
  std::string version = colon == std::string::npos ? "" : ref.substr(colon + 1);
  ASSIGN_OR_RETURN(auto rows,
                   db_.Query("SELECT digest FROM images WHERE name = ?1 AND (?2 = '' OR version "
                             "= ?2)" +
                                 kind_sql + " ORDER BY created_at DESC, rowid DESC LIMIT 1",
                             {name, version}));
  if (rows.empty()) return NotFound(what + " '" + ref + "' not found");
  return Load(rows[0].Text(0));
}

Status ImageStore::Remove(const std::string& ref) {
  ASSIGN_OR_RETURN(ImageInfo info, Resolve(ref));
  // Templates reference images with ON DELETE RESTRICT and host_images with CASCADE, so
  // the database refuses to remove an image in use without this module knowing who uses it.
  Status s = db_.Exec("DELETE FROM images WHERE digest = ?1", {info.digest});
  if (s.code() == Code::kFailedPrecondition) {
    return FailedPrecondition("image '" + ref + "' is used by a template");
  }
  RETURN_IF_ERROR(s);
  std::error_code ec;
  chmod(info.dir.c_str(), 0755);
  fs::remove_all(info.dir, ec);
  return Status::Ok();
}

Result<int64_t> ImageStore::Count() {
  ASSIGN_OR_RETURN(auto rows, db_.Query("SELECT count(*) FROM images"));
  return rows.at(0).Int(0);
}

Result<Json> ImageStore::Gc(bool unused) {
  Json removed = Json::array();
  if (unused) {
    // An image is unused when the database lets it go (templates RESTRICT it).
    ASSIGN_OR_RETURN(auto rows, db_.Query("SELECT digest FROM images ORDER BY created_at"));
    for (const auto& r : rows) {
      Status s = Remove("sha256:" + r.Text(0));
      if (s.code() == Code::kFailedPrecondition) continue;
      RETURN_IF_ERROR(s);
      removed.push_back("sha256:" + r.Text(0));
    }
  }
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(images_dir_, ec)) {
    std::string digest = entry.path().filename();
    if (Load(digest).ok()) continue;
    chmod(entry.path().c_str(), 0755);
    fs::remove_all(entry.path(), ec);
    removed.push_back(entry.path().string());
  }
  std::lock_guard lock(active_mu_);
  for (const auto& entry : fs::directory_iterator(tmp_dir_, ec)) {
    if (active_.count(entry.path().string())) continue;
    fs::remove_all(entry.path(), ec);
    removed.push_back(entry.path().string());
  }
  return Json{{"removed", removed}};
}

}  // namespace vdswap
