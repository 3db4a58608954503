#include "image/image_store.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "core/clock.h"
#include "core/files.h"
#include "core/log.h"
#include "core/sha256.h"
#include "image/caller_file.h"
#include "image/manifest.h"
#include "image/oci.h"
#include "image/os_release_reader.h"

namespace fs = std::filesystem;

namespace vdswap {

namespace {

constexpr char kAppFile[] = "app.erofs";
constexpr char kManifestPath[] = "vdswap.json";

// A UUID derived from the manifest identity, so that the same input gives the same bytes
// and different versions get different filesystem UUIDs.
std::string FsUuid(const AppManifest& m) {
  std::string h = Sha256::Of("vdswap-app\n" + m.name + "\n" + m.version);
  return h.substr(0, 8) + "-" + h.substr(8, 4) + "-4" + h.substr(13, 3) + "-8" + h.substr(17, 3) +
         "-" + h.substr(20, 12);
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

// `s` with control characters shown as \xNN, for messages about refused input.
std::string Printable(std::string_view s) {
  std::string out;
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      char hex[8];
      snprintf(hex, sizeof hex, "\\x%02x", u);
      out += hex;
    } else {
      out += c;
    }
  }
  return out;
}

// The kernel command line goes into the domain definition and the guest's /proc/cmdline:
// one line of printable text, no longer than the kernel accepts.
Status CheckCmdline(std::string_view cmdline) {
  constexpr size_t kMaxCmdline = 2048;  // COMMAND_LINE_SIZE on x86
  if (cmdline.size() > kMaxCmdline) {
    return InvalidArgument("kernel command line is longer than " + std::to_string(kMaxCmdline) +
                           " bytes");
  }
  if (Printable(cmdline) != cmdline) {
    return InvalidArgument("kernel command line '" + Printable(cmdline) +
                           "' contains control characters");
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
                                 const StageLimits& limits, TreeStager& stager) {
  mkdir(outer.c_str(), 0755);
  TreeStager unpack(outer, limits);
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

}  // namespace

std::string KindName(ImageKind kind) { return kind == ImageKind::kApp ? "app" : "os"; }

std::string ImageInfo::disk_path() const {
  if (kind == ImageKind::kApp) return dir + "/" + kAppFile;
  return dir + "/os." + meta.value("format", "raw");
}
std::string ImageInfo::kernel_path() const {
  return meta.contains("boot") && meta["boot"].value("kernel", false) ? dir + "/vmlinuz" : "";
}
std::string ImageInfo::initrd_path() const {
  return meta.contains("boot") && meta["boot"].value("initrd", false) ? dir + "/initrd.img" : "";
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

ImageStore::ImageStore(Db& db, CommandRunner& runner, std::string state_dir, StageLimits limits)
    : db_(db),
      runner_(runner),
      state_dir_(std::move(state_dir)),
      images_dir_(state_dir_ + "/images"),
      tmp_dir_(state_dir_ + "/tmp"),
      limits_(limits) {
  std::error_code ec;
  fs::create_directories(images_dir_, ec);
  fs::create_directories(tmp_dir_, ec);
}

Result<ImageInfo> ImageStore::BuildApp(const AppBuildRequest& req, const ProgressFn& progress) {
  if (!req.name.empty() && !IsValidName(req.name)) {
    return InvalidArgument("image name '" + req.name + "' must match [a-z0-9][a-z0-9._-]{0,62}");
  }
  ASSIGN_OR_RETURN(TempDir work, TempDir::Create(tmp_dir_, "build"));
  ActiveStaging active(*this, work.path());

  // Builds that take over a second report progress; quick ones stay quiet.
  const auto started = std::chrono::steady_clock::now();
  auto report = [&](const char* phase, const StageStats& s) {
    if (progress && std::chrono::steady_clock::now() - started > std::chrono::seconds(1)) {
      progress(StageEvent(phase, s));
    }
  };
  auto stage_progress = [&report](const StageStats& s) { report("staging", s); };
  std::string source = req.source;
  std::string tree;
  StageStats stats;
  std::optional<ImageConfig> config;
  constexpr std::string_view kOci = "oci-archive:", kDocker = "docker-archive:";
  const bool is_oci = source.rfind(kOci, 0) == 0;
  const bool is_docker = source.rfind(kDocker, 0) == 0;
  if (is_oci) source = source.substr(kOci.size());
  if (is_docker) source = source.substr(kDocker.size());

  struct stat st {};
  if (stat(source.c_str(), &st) != 0) {
    return InvalidArgument("source '" + source + "' does not exist");
  }
  if (S_ISDIR(st.st_mode) && !is_oci && !is_docker) {
    tree = source;  // built in place: nothing to copy
    ASSIGN_OR_RETURN(stats, ScanTree(tree));
  } else if (S_ISREG(st.st_mode)) {
    tree = work.path() + "/root";
    mkdir(tree.c_str(), 0755);
    TreeStager stager(tree, limits_, stage_progress);
    if (!is_oci && !is_docker) {
      RETURN_IF_ERROR(stager.Apply(source, /*oci_layer=*/false));
    } else {
      ASSIGN_OR_RETURN(config,
                       StageArchive(source, is_docker, work.path() + "/archive", limits_, stager));
    }
    stats = stager.stats();
  } else {
    return InvalidArgument("source '" + source + "' is neither a directory nor a file");
  }

  ASSIGN_OR_RETURN(AppManifest manifest, ManifestOf(tree, config, req));
  report("building EROFS image", stats);
  const int64_t stage_ms = MsSince(started);
  std::string staged = work.path() + "/image";
  mkdir(staged.c_str(), 0755);
  std::string out = staged + "/" + kAppFile;
  RETURN_IF_ERROR(
      runner_
          .RunOk({"mkfs.erofs", "--quiet", "-T0", "--all-root", "-U", FsUuid(manifest), out, tree})
          .status()
          .WithContext("building app image"));
  const int64_t mkfs_ms = MsSince(started) - stage_ms;
  StartWriteback(out);  // the disk writes while the CPU hashes; Record() waits for both
  ASSIGN_OR_RETURN(std::string digest, Sha256::OfFile(out));
  VLOG(kInfo) << "app image sha256:" << digest.substr(0, 12) << " built: stage " << stage_ms
              << " ms, mkfs.erofs " << mkfs_ms << " ms, digest "
              << MsSince(started) - stage_ms - mkfs_ms << " ms";
  ImageInfo info;
  info.digest = digest;
  info.kind = ImageKind::kApp;
  info.name = req.name.empty() ? manifest.name : req.name;
  info.version = manifest.version;
  info.size_bytes = fs::file_size(out);
  info.meta = {{"manifest", ManifestToJson(manifest)}, {"files", stats.files}};
  return Record(std::move(info), staged);
}

ImageStore::ActiveStaging::ActiveStaging(ImageStore& store, std::string path)
    : store_(store), path_(std::move(path)) {
  std::lock_guard lock(store_.active_mu_);
  store_.active_.insert(path_);
}

ImageStore::ActiveStaging::~ActiveStaging() {
  std::lock_guard lock(store_.active_mu_);
  store_.active_.erase(path_);
}

namespace {

// --os-id/--os-version (both or neither) and --firmware.
Status CheckStatedOs(const OsImportRequest& req) {
  if (req.os_id.empty() != req.os_version.empty()) {
    return InvalidArgument("--os-id and --os-version go together");
  }
  if (!req.os_id.empty() && (!IsValidName(req.os_id) || !IsValidVersion(req.os_version))) {
    return InvalidArgument(
        "--os-id must match [a-z0-9][a-z0-9._-]{0,62} and --os-version be "
        "1-64 of [A-Za-z0-9._+-]");
  }
  if (!req.firmware.empty() && req.firmware != "bios" && req.firmware != "efi") {
    return InvalidArgument("firmware '" + Printable(req.firmware) + "' must be bios or efi");
  }
  return Status::Ok();
}

// Everything of an import request that can be checked before a file is read.
Status CheckOsImportRequest(const OsImportRequest& req) {
  if (!IsValidName(req.name)) {
    return InvalidArgument("image name '" + req.name + "' must match [a-z0-9][a-z0-9._-]{0,62}");
  }
  if (req.initrd.size() && req.kernel.empty()) return InvalidArgument("--initrd needs --kernel");
  if (!req.version.empty() && !IsValidVersion(req.version)) {
    return InvalidArgument("version '" + Printable(req.version) +
                           "' must be 1-64 of [A-Za-z0-9._+-]");
  }
  RETURN_IF_ERROR(CheckCmdline(req.cmdline));
  return CheckStatedOs(req);
}

// qemu-img's view of the staged `copy` of the caller's disk `shown` (`bytes` long), when
// it is an OS disk vdswap takes: raw (whole sectors) or qcow2, with no backing or
// external data file. kInvalidArgument naming `shown` otherwise.
Result<Json> CheckOsDisk(CommandRunner& runner, const std::string& copy, const std::string& shown,
                         uint64_t bytes) {
  // The copy's path is absolute, so qemu-img takes it for a plain file, never a protocol.
  auto info_out = runner.RunOk({"qemu-img", "info", "--output=json", "--", copy});
  if (!info_out.ok()) {
    return InvalidArgument("disk '" + shown +
                           "' is not a disk image: " + info_out.status().message());
  }
  auto qinfo = ParseJson(info_out->out, "qemu-img info");
  if (!qinfo.ok()) return Internal("qemu-img info printed something that is not JSON");
  const std::string format = qinfo->value("format", "");
  if (format != "raw" && format != "qcow2") {
    return InvalidArgument("'" + shown + "' is " + format + "; OS images must be raw or qcow2");
  }
  if (qinfo->contains("backing-filename")) {
    return InvalidArgument("'" + shown +
                           "' has a backing file; flatten it first (qemu-img "
                           "convert)");
  }
  const Json specific = qinfo->value("format-specific", Json::object());
  if (specific.is_object() && specific.value("data", Json::object()).contains("data-file")) {
    return InvalidArgument("'" + shown +
                           "' keeps its data in an external file; convert it first (qemu-img "
                           "convert)");
  }
  if (format == "raw" && bytes % 512 != 0) {
    return InvalidArgument("'" + shown + "' is not a disk image (its size, " +
                           std::to_string(bytes) + " bytes, is not a multiple of 512)");
  }
  return qinfo;
}

// What makes an OS image itself: its disk, boot files, command line and firmware, as
// the text its digest is taken of, and the "boot" meta that says how it boots.
struct OsIdentity {
  std::string id;
  Json boot = Json::object();
};

Result<OsIdentity> IdentityOf(const OsImportRequest& req, const std::string& staged,
                              const std::string& disk_hex) {
  OsIdentity out;
  out.id = "disk " + disk_hex + "\n";
  if (!req.kernel.empty()) {
    ASSIGN_OR_RETURN(std::string h, Sha256::OfFile(staged + "/vmlinuz"));
    out.id += "kernel " + h + "\n";
    out.boot["kernel"] = true;
  }
  if (!req.initrd.empty()) {
    ASSIGN_OR_RETURN(std::string h, Sha256::OfFile(staged + "/initrd.img"));
    out.id += "initrd " + h + "\n";
    out.boot["initrd"] = true;
  }
  if (!req.cmdline.empty()) {
    out.id += "cmdline " + Sha256::Of(req.cmdline) + "\n";
    out.boot["cmdline"] = req.cmdline;
  }
  if (req.firmware == "efi") {
    out.id += "firmware efi\n";
    out.boot["firmware"] = "efi";
  }
  return out;
}

}  // namespace

OsRelease ImageStore::OsReleaseOf(const OsImportRequest& req, const std::string& format,
                                  const std::string& disk, const ProgressFn& progress) {
  if (!req.os_id.empty()) return {{"ID", req.os_id}, {"VERSION_ID", req.os_version}};
  OsReleaseProbe probe;
  if (format == "raw") {
    probe = ReadOsRelease(runner_, disk);
  } else {
    probe.not_found = "os-release is read from raw disks only (this one is " + format + ")";
  }
  if (!probe.fields.empty()) return probe.fields;
  const std::string warning = "no os-release found on '" + req.disk + "': " + probe.not_found +
                              "; apps that require an os_id will not match it: state it with "
                              "--os-id ID --os-version V";
  VLOG(kWarning) << warning;
  if (progress) progress({{"phase", "inspect"}, {"message", warning}});
  return {};
}

Result<ImageInfo> ImageStore::ImportOs(const OsImportRequest& req, const ProgressFn& progress) {
  RETURN_IF_ERROR(CheckOsImportRequest(req));
  // The daemon reads these as root for a caller who may not be: each is opened once,
  // checked on its descriptor and copied from it (image/caller_file.h). Every later step
  // (qemu-img, debugfs, hashing) works on the private copy in the staging directory.
  ASSIGN_OR_RETURN(CallerFile disk, CallerFile::Open("disk", req.disk));
  std::optional<CallerFile> kernel, initrd;
  if (!req.kernel.empty()) {
    ASSIGN_OR_RETURN(kernel, CallerFile::Open("kernel", req.kernel));
  }
  if (!req.initrd.empty()) {
    ASSIGN_OR_RETURN(initrd, CallerFile::Open("initrd", req.initrd));
  }

  ASSIGN_OR_RETURN(TempDir work, TempDir::Create(tmp_dir_, "import"));
  ActiveStaging active(*this, work.path());
  std::string staged = work.path() + "/image";
  mkdir(staged.c_str(), 0755);
  if (progress) progress({{"phase", "copy"}, {"message", "copying " + req.disk}});
  const std::string copy = staged + "/os.disk";
  RETURN_IF_ERROR(disk.CopyTo(copy));
  if (kernel) RETURN_IF_ERROR(kernel->CopyTo(staged + "/vmlinuz"));
  if (initrd) RETURN_IF_ERROR(initrd->CopyTo(staged + "/initrd.img"));

  ASSIGN_OR_RETURN(Json qinfo, CheckOsDisk(runner_, copy, req.disk, disk.size()));
  const std::string format = qinfo.value("format", "");
  std::string disk_dst = staged + "/os." + format;
  if (rename(copy.c_str(), disk_dst.c_str()) != 0) {
    return Internal("cannot rename '" + copy + "': " + strerror(errno));
  }
  const OsRelease os_release = OsReleaseOf(req, format, disk_dst, progress);

  StartWriteback(disk_dst);
  ASSIGN_OR_RETURN(std::string disk_hex, Sha256::OfFile(disk_dst));
  ASSIGN_OR_RETURN(OsIdentity identity, IdentityOf(req, staged, disk_hex));
  ImageInfo info;
  info.digest = Sha256::Of(identity.id);
  info.kind = ImageKind::kOs;
  info.name = req.name;
  auto vid = os_release.find("VERSION_ID");
  info.version = !req.version.empty() ? req.version : vid != os_release.end() ? vid->second : "1";
  if (!IsValidVersion(info.version)) {
    return InvalidArgument("the disk's os-release VERSION_ID '" + Printable(info.version) +
                           "' is not a valid version (1-64 of [A-Za-z0-9._+-]); give one with "
                           "--version");
  }
  info.size_bytes = disk.size();
  info.meta = {{"format", format},
               {"disk_sha256", disk_hex},
               {"os_release", os_release},
               {"boot", identity.boot},
               {"virtual_size", qinfo.value("virtual-size", uint64_t{0})}};
  return Record(std::move(info), staged);
}

// Moves a staged image directory to its digest's place and records it; an image that
// exists already is returned as it is.
Result<ImageInfo> ImageStore::Record(ImageInfo info, const std::string& staged_dir) {
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
  info.kind = r.Text(1) == "app" ? ImageKind::kApp : ImageKind::kOs;
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
