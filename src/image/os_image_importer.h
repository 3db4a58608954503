#pragma once

#include <string>

#include "core/command_runner.h"
#include "core/progress.h"
#include "core/status.h"
#include "image/image_store.h"

namespace vdswap {

struct OsImportRequest {
  std::string disk;  // raw or qcow2 without a backing file
  std::string kernel, initrd, cmdline;
  std::string name;
  std::string version;  // default: os-release VERSION_ID, else "1"
  // The OS, stated by the caller where vdswap cannot read its os-release (both or none).
  std::string os_id, os_version;
  std::string firmware;  // "bios" (default, also "") or "efi" (OVMF)
};

// Imports users' OS disks (with their boot files) as OS images recorded in an
// ImageStore. An OS image's digest is that of its disk, kernel, initrd, command line and
// firmware; its os-release is read from the disk (image/os_release_reader.h) or stated by
// the caller. Thread-safe: imports share only the store and the runner.
class OsImageImporter {
 public:
  OsImageImporter(ImageStore& store, CommandRunner& runner);

  // Copies the disk and its boot files into one of the store's staging directories (each
  // must be a caller file as image/caller_file.h defines it: absolute path, non-empty
  // regular file, not in /proc, /sys or /dev), checks the copy with `qemu-img info` (raw
  // or qcow2, no backing or external data file; a raw disk's size is a multiple of 512)
  // and records it (ImageStore::Record) with the os-release it finds; warns on `progress`
  // when it finds none. kInvalidArgument naming the file or field for bad input (control
  // characters in the version or cmdline too); kInternal when a copy fails.
  Result<ImageInfo> Import(const OsImportRequest& req, const ProgressFn& progress) const;

 private:
  ImageStore& store_;
  CommandRunner& runner_;
};

}  // namespace vdswap
