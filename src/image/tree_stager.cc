#include "image/tree_stager.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <memory>
#include <vector>

#include "core/unique_fd.h"

namespace vdswap {

namespace {

constexpr std::string_view kWhiteoutPrefix = ".wh.";
constexpr std::string_view kOpaqueMarker = ".wh..wh..opq";

struct ArchiveCloser {
  void operator()(archive* a) const { archive_read_free(a); }
};
using ArchivePtr = std::unique_ptr<archive, ArchiveCloser>;

Result<ArchivePtr> OpenArchive(const std::string& path) {
  ArchivePtr a(archive_read_new());
  archive_read_support_filter_all(a.get());
  archive_read_support_format_tar(a.get());
  archive_read_support_format_gnutar(a.get());
  if (archive_read_open_filename(a.get(), path.c_str(), 1 << 16) != ARCHIVE_OK) {
    return InvalidArgument("archive '" + path + "': " + archive_error_string(a.get()));
  }
  return a;
}

// Splits an archive path into clean components: strips "./" and a single leading "/"
// (tar writers differ), refuses ".." and empty names. Returns an empty vector for the root.
Result<std::vector<std::string>> Components(const std::string& raw, bool allow_absolute) {
  std::vector<std::string> parts;
  if (!allow_absolute && !raw.empty() && raw[0] == '/') {
    return InvalidArgument("absolute path '" + raw + "'");
  }
  size_t start = 0;
  while (start < raw.size()) {
    size_t slash = raw.find('/', start);
    std::string part = raw.substr(start, slash == std::string::npos ? slash : slash - start);
    start = slash == std::string::npos ? raw.size() : slash + 1;
    if (part.empty() || part == ".") continue;
    if (part == "..") return InvalidArgument("path '" + raw + "' escapes the root with '..'");
    parts.push_back(std::move(part));
  }
  return parts;
}

std::string Join(const std::vector<std::string>& parts, size_t n) {
  std::string out;
  for (size_t i = 0; i < n; ++i) out += (i ? "/" : "") + parts[i];
  return out;
}

}  // namespace

TreeStager::TreeStager(std::string root, StageLimits limits, Clock& clock, ProgressFn progress)
    : root_(std::move(root)), limits_(limits), clock_(clock), progress_(std::move(progress)) {}

Status TreeStager::Apply(const std::string& archive_path, bool oci_layer) {
  if (oci_layer) RETURN_IF_ERROR(ApplyWhiteouts(archive_path));
  return Extract(archive_path, oci_layer);
}

// Whiteouts remove what lower layers left, so they run before this layer's own entries
// (an entry and a whiteout of the same layer never name the same path, per the OCI spec).
Status TreeStager::ApplyWhiteouts(const std::string& archive_path) {
  ASSIGN_OR_RETURN(ArchivePtr a, OpenArchive(archive_path));
  archive_entry* entry = nullptr;
  int rc;
  while ((rc = archive_read_next_header(a.get(), &entry)) == ARCHIVE_OK || rc == ARCHIVE_WARN) {
    std::string name = archive_entry_pathname(entry) ? archive_entry_pathname(entry) : "";
    auto parts = Components(name, true);
    if (!parts.ok()) return parts.status().WithContext("archive '" + archive_path + "'");
    if (parts->empty()) continue;
    const std::string& base = parts->back();
    if (base.rfind(kWhiteoutPrefix, 0) != 0) continue;
    std::vector<std::string> dir(parts->begin(), parts->end() - 1);
    // The directory holding the whiteout must be a real directory inside the tree.
    for (size_t i = 1; i <= dir.size(); ++i) {
      struct stat st {};
      std::string p = root_ + "/" + Join(dir, i);
      if (lstat(p.c_str(), &st) != 0) break;  // nothing below to white out
      if (!S_ISDIR(st.st_mode)) {
        return InvalidArgument("archive '" + archive_path + "': whiteout '" + name +
                               "' goes through non-directory '" + Join(dir, i) + "'");
      }
    }
    std::error_code ec;
    std::string dir_path = root_ + (dir.empty() ? "" : "/" + Join(dir, dir.size()));
    if (base == kOpaqueMarker) {
      if (std::filesystem::is_directory(dir_path, ec)) {
        for (const auto& child : std::filesystem::directory_iterator(dir_path, ec)) {
          std::filesystem::remove_all(child.path(), ec);
        }
      }
    } else {
      std::filesystem::remove_all(dir_path + "/" + base.substr(kWhiteoutPrefix.size()), ec);
    }
  }
  if (rc != ARCHIVE_EOF) {
    return InvalidArgument("archive '" + archive_path + "': " + archive_error_string(a.get()));
  }
  return Status::Ok();
}

Status TreeStager::Extract(const std::string& archive_path, bool oci_layer) {
  ASSIGN_OR_RETURN(ArchivePtr a, OpenArchive(archive_path));
  auto fail = [&](const std::string& entry, const std::string& why) {
    return InvalidArgument("archive '" + archive_path + "': entry '" + entry + "': " + why);
  };
  archive_entry* entry = nullptr;
  int rc;
  std::vector<char> buf(1 << 20);
  while ((rc = archive_read_next_header(a.get(), &entry)) == ARCHIVE_OK || rc == ARCHIVE_WARN) {
    std::string name = archive_entry_pathname(entry) ? archive_entry_pathname(entry) : "";
    if (name.size() > limits_.max_path) return fail(name.substr(0, 64), "path too long");
    auto parts = Components(name, false);
    if (!parts.ok()) return fail(name, parts.status().message());
    if (parts->empty()) continue;  // the root itself
    if (oci_layer && parts->back().rfind(kWhiteoutPrefix, 0) == 0) continue;
    if (++stats_.files > limits_.max_entries) {
      return fail(name, "more than " + std::to_string(limits_.max_entries) + " entries");
    }
    if (Status s = ExtractEntry(a.get(), entry, *parts, buf); !s.ok()) {
      return fail(name, s.message());
    }
    if (progress_ && clock_.Now() - last_progress_ > std::chrono::seconds(1)) {
      last_progress_ = clock_.Now();
      progress_(stats_);
    }
  }
  if (rc != ARCHIVE_EOF) {
    return InvalidArgument("archive '" + archive_path + "': " + archive_error_string(a.get()));
  }
  return Status::Ok();
}

Status TreeStager::ExtractEntry(archive* a, archive_entry* entry,
                                const std::vector<std::string>& parts, std::vector<char>& buf) {
  RETURN_IF_ERROR(MakeParents(parts));
  const std::string path = root_ + "/" + Join(parts, parts.size());
  const mode_t mode = archive_entry_perm(entry) & 07777;
  const mode_t type = archive_entry_filetype(entry);

  // A later entry replaces an earlier one; directories merge.
  struct stat old {};
  bool exists = lstat(path.c_str(), &old) == 0;
  if (exists && !(type == AE_IFDIR && S_ISDIR(old.st_mode))) {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  if (const char* hardlink = archive_entry_hardlink(entry)) return LinkHard(path, hardlink);
  switch (type) {
    case AE_IFDIR:
      if (!exists && mkdir(path.c_str(), 0755) != 0) {
        return InvalidArgument(std::string("mkdir: ") + strerror(errno));
      }
      chmod(path.c_str(), mode | 0700);
      return Status::Ok();
    case AE_IFLNK: {
      const char* target = archive_entry_symlink(entry);
      // The link is stored as is: inside the VM it resolves within the app's root.
      if (target == nullptr || symlink(target, path.c_str()) != 0) {
        return InvalidArgument(std::string("symlink: ") + strerror(errno));
      }
      return Status::Ok();
    }
    case AE_IFREG:
      return WriteData(a, path, mode, buf);
    case AE_IFCHR:
    case AE_IFBLK:
      return InvalidArgument("device nodes are not allowed in an app image");
    default:
      return InvalidArgument("FIFOs and sockets are not allowed in an app image");
  }
}

Status TreeStager::MakeParents(const std::vector<std::string>& parts) {
  // Every parent must be a directory of ours: create missing ones, refuse symlinks.
  for (size_t i = 1; i < parts.size(); ++i) {
    std::string p = root_ + "/" + Join(parts, i);
    struct stat st {};
    if (lstat(p.c_str(), &st) == 0) {
      if (S_ISLNK(st.st_mode)) {
        return InvalidArgument("would be written through the symlink '" + Join(parts, i) + "'");
      }
      if (!S_ISDIR(st.st_mode)) {
        return InvalidArgument("'" + Join(parts, i) + "' is not a directory");
      }
    } else if (mkdir(p.c_str(), 0755) != 0) {
      return InvalidArgument(std::string("mkdir: ") + strerror(errno));
    }
  }
  return Status::Ok();
}

Status TreeStager::LinkHard(const std::string& path, const char* hardlink) {
  auto target = Components(hardlink, false);
  if (!target.ok() || target->empty()) {
    return InvalidArgument("hard link to '" + std::string(hardlink) + "' leaves the root");
  }
  for (size_t i = 1; i <= target->size(); ++i) {
    struct stat st {};
    std::string p = root_ + "/" + Join(*target, i);
    if (lstat(p.c_str(), &st) != 0 || S_ISLNK(st.st_mode) ||
        (i == target->size() && !S_ISREG(st.st_mode))) {
      return InvalidArgument("hard link target '" + std::string(hardlink) +
                             "' is not a regular file extracted earlier");
    }
  }
  if (link((root_ + "/" + Join(*target, target->size())).c_str(), path.c_str()) != 0) {
    return InvalidArgument(std::string("link: ") + strerror(errno));
  }
  return Status::Ok();
}

Status TreeStager::WriteData(archive* a, const std::string& path, mode_t mode,
                             std::vector<char>& buf) {
  UniqueFd fd(open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!fd.valid()) return InvalidArgument(std::string("create: ") + strerror(errno));
  la_ssize_t n;
  while ((n = archive_read_data(a, buf.data(), buf.size())) > 0) {
    stats_.bytes += static_cast<uint64_t>(n);
    if (stats_.bytes > limits_.max_bytes) {
      return InvalidArgument("the tree grows past " + std::to_string(limits_.max_bytes) + " bytes");
    }
    for (la_ssize_t off = 0; off < n;) {
      ssize_t w = write(fd.get(), buf.data() + off, static_cast<size_t>(n - off));
      if (w < 0) return InvalidArgument(std::string("write: ") + strerror(errno));
      off += w;
    }
  }
  if (n < 0) return InvalidArgument(archive_error_string(a));
  fchmod(fd.get(), mode);
  return Status::Ok();
}

}  // namespace vdswap
