#include "image/os_image_importer.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string_view>
#include <utility>

#include "core/files.h"
#include "core/log.h"
#include "core/sha256.h"
#include "image/caller_file.h"
#include "image/manifest.h"
#include "image/os_release_reader.h"

namespace vdswap {

namespace {

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

Result<OsIdentity> IdentityOf(const OsImportRequest& req, const ImageStaging& staging,
                              const std::string& disk_hex) {
  OsIdentity out;
  out.id = "disk " + disk_hex + "\n";
  if (!req.kernel.empty()) {
    ASSIGN_OR_RETURN(std::string h, Sha256::OfFile(staging.kernel_path()));
    out.id += "kernel " + h + "\n";
    out.boot["kernel"] = true;
  }
  if (!req.initrd.empty()) {
    ASSIGN_OR_RETURN(std::string h, Sha256::OfFile(staging.initrd_path()));
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

// The os-release of an OS disk being imported: as the request states it, else read from
// the staged `disk` of `format`; empty (with a warning in the log and on `progress`)
// when neither.
OsRelease OsReleaseOf(CommandRunner& runner, const OsImportRequest& req, const std::string& format,
                      const std::string& disk, const ProgressFn& progress) {
  if (!req.os_id.empty()) return {{"ID", req.os_id}, {"VERSION_ID", req.os_version}};
  OsReleaseProbe probe;
  if (format == "raw") {
    probe = ReadOsRelease(runner, disk);
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

// The caller's files of an import, opened (image/caller_file.h).
struct OsFiles {
  CallerFile disk;
  std::optional<CallerFile> kernel, initrd;
};

Result<OsFiles> OpenOsFiles(const OsImportRequest& req) {
  ASSIGN_OR_RETURN(CallerFile disk, CallerFile::Open("disk", req.disk));
  OsFiles files{std::move(disk), std::nullopt, std::nullopt};
  if (!req.kernel.empty()) {
    ASSIGN_OR_RETURN(files.kernel, CallerFile::Open("kernel", req.kernel));
  }
  if (!req.initrd.empty()) {
    ASSIGN_OR_RETURN(files.initrd, CallerFile::Open("initrd", req.initrd));
  }
  return files;
}

// The image's version: as requested, else the os-release's VERSION_ID, else "1".
Result<std::string> VersionOf(const OsImportRequest& req, const OsRelease& os_release) {
  auto vid = os_release.find("VERSION_ID");
  std::string version = !req.version.empty()      ? req.version
                        : vid != os_release.end() ? vid->second
                                                  : "1";
  if (!IsValidVersion(version)) {
    return InvalidArgument("the disk's os-release VERSION_ID '" + Printable(version) +
                           "' is not a valid version (1-64 of [A-Za-z0-9._+-]); give one with "
                           "--version");
  }
  return version;
}

}  // namespace

OsImageImporter::OsImageImporter(ImageStore& store, CommandRunner& runner)
    : store_(store), runner_(runner) {}

Result<ImageInfo> OsImageImporter::Import(const OsImportRequest& req,
                                          const ProgressFn& progress) const {
  RETURN_IF_ERROR(CheckOsImportRequest(req));
  // The daemon reads these as root for a caller who may not be: each is opened once,
  // checked on its descriptor and copied from it (image/caller_file.h). Every later step
  // (qemu-img, debugfs, hashing) works on the private copy in the staging directory.
  ASSIGN_OR_RETURN(OsFiles files, OpenOsFiles(req));
  ASSIGN_OR_RETURN(ImageStaging staging, store_.Stage(ImageKind::kOs));
  if (progress) progress({{"phase", "copy"}, {"message", "copying " + req.disk}});
  const std::string copy = staging.work_dir() + "/os.disk";  // its format is not known yet
  RETURN_IF_ERROR(files.disk.CopyTo(copy));
  if (files.kernel) RETURN_IF_ERROR(files.kernel->CopyTo(staging.kernel_path()));
  if (files.initrd) RETURN_IF_ERROR(files.initrd->CopyTo(staging.initrd_path()));

  ASSIGN_OR_RETURN(Json qinfo, CheckOsDisk(runner_, copy, req.disk, files.disk.size()));
  const std::string format = qinfo.value("format", "");
  const std::string disk = staging.os_disk_path(format);
  if (rename(copy.c_str(), disk.c_str()) != 0) {
    return Internal("cannot rename '" + copy + "': " + strerror(errno));
  }
  const OsRelease os_release = OsReleaseOf(runner_, req, format, disk, progress);

  StartWriteback(disk);
  ASSIGN_OR_RETURN(std::string disk_hex, Sha256::OfFile(disk));
  ASSIGN_OR_RETURN(OsIdentity identity, IdentityOf(req, staging, disk_hex));
  ImageInfo info;
  info.digest = Sha256::Of(identity.id);
  info.kind = ImageKind::kOs;
  info.name = req.name;
  ASSIGN_OR_RETURN(info.version, VersionOf(req, os_release));
  info.size_bytes = files.disk.size();
  info.meta = {{"format", format},
               {"disk_sha256", disk_hex},
               {"os_release", os_release},
               {"boot", identity.boot},
               {"virtual_size", qinfo.value("virtual-size", uint64_t{0})}};
  return store_.Record(std::move(staging), std::move(info));
}

}  // namespace vdswap
