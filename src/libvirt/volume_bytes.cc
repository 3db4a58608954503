#include "libvirt/volume_bytes.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "core/unique_fd.h"

namespace vdswap {

namespace {

constexpr size_t kChunk = size_t{1} << 20;

std::string Name(virStorageVolPtr vol) {
  const char* n = virStorageVolGetName(vol);
  return std::string("volume '") + (n ? n : "?") + "'";
}

Status FileError(const std::string& what, const std::string& path) {
  return Unavailable(what + " " + path + ": " + std::strerror(errno));
}

// Reads the next chunk of `in` into `buf`: the byte count (0 at its end).
size_t ReadChunk(std::istream& in, std::vector<char>& buf) {
  in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
  return static_cast<size_t>(in.gcount());
}

Status WriteFile(const std::string& path, std::istream& in, uint64_t size,
                 const std::function<void(uint64_t)>& sent) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd.valid()) return FileError("opening", path);
  std::vector<char> buf(kChunk);
  uint64_t done = 0;
  while (done < size) {
    const size_t n = ReadChunk(in, buf);
    if (n == 0) return Unavailable("the local file ended after " + std::to_string(done) + " bytes");
    for (size_t off = 0; off < n;) {
      ssize_t w = ::pwrite(fd.get(), buf.data() + off, n - off, static_cast<off_t>(done + off));
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) return FileError("writing", path);
      off += static_cast<size_t>(w);
    }
    done += n;
    if (sent) sent(done);
  }
  if (::fdatasync(fd.get()) != 0) return FileError("flushing", path);
  return Status::Ok();
}

Status WriteStream(virConnectPtr conn, virStorageVolPtr vol, std::istream& in, uint64_t size,
                   const std::function<void(uint64_t)>& sent) {
  StreamRef stream(virStreamNew(conn, 0));
  if (!stream) return LibvirtError("stream");
  if (virStorageVolUpload(vol, stream.get(), 0, size, 0) != 0) {
    return LibvirtError("uploading " + Name(vol));
  }
  auto fail = [&](const std::string& what) {
    Status s = LibvirtError(what);
    virStreamAbort(stream.get());
    return s;
  };
  std::vector<char> buf(kChunk);
  uint64_t done = 0;
  while (done < size) {
    const size_t n = ReadChunk(in, buf);
    if (n == 0) return fail("the local file ended after " + std::to_string(done) + " bytes");
    for (size_t off = 0; off < n;) {
      int w = virStreamSend(stream.get(), buf.data() + off, n - off);
      if (w < 0) return fail("uploading " + Name(vol));
      off += static_cast<size_t>(w);
    }
    done += n;
    if (sent) sent(done);
  }
  if (virStreamFinish(stream.get()) != 0) return fail("finishing the upload of " + Name(vol));
  return Status::Ok();
}

Status ReadFile(const std::string& path, uint64_t offset, uint64_t length,
                const std::function<void(std::string_view)>& consume) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return FileError("opening", path);
  std::vector<char> buf(kChunk);
  uint64_t done = 0;
  while (length == 0 || done < length) {
    size_t want = length == 0 ? buf.size() : std::min<uint64_t>(buf.size(), length - done);
    ssize_t n = ::pread(fd.get(), buf.data(), want, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return FileError("reading", path);
    if (n == 0) break;
    consume(std::string_view(buf.data(), static_cast<size_t>(n)));
    done += static_cast<uint64_t>(n);
  }
  return Status::Ok();
}

Status ReadStream(virConnectPtr conn, virStorageVolPtr vol, uint64_t offset, uint64_t length,
                  const std::function<void(std::string_view)>& consume) {
  StreamRef stream(virStreamNew(conn, 0));
  if (!stream) return LibvirtError("stream");
  if (virStorageVolDownload(vol, stream.get(), offset, length, 0) != 0) {
    return LibvirtError("reading " + Name(vol));
  }
  std::vector<char> buf(kChunk);
  while (true) {
    int n = virStreamRecv(stream.get(), buf.data(), buf.size());
    if (n < 0) {
      Status s = LibvirtError("reading " + Name(vol));
      virStreamAbort(stream.get());
      return s;
    }
    if (n == 0) break;
    consume(std::string_view(buf.data(), static_cast<size_t>(n)));
  }
  if (virStreamFinish(stream.get()) != 0) return LibvirtError("reading " + Name(vol));
  return Status::Ok();
}

}  // namespace

Status WriteVolume(virConnectPtr conn, virStorageVolPtr vol, bool local, std::istream& in,
                   uint64_t size, const std::function<void(uint64_t)>& sent) {
  if (!local) return WriteStream(conn, vol, in, size, sent);
  return WriteFile(FreeString(virStorageVolGetPath(vol)), in, size, sent);
}

Status ReadVolume(virConnectPtr conn, virStorageVolPtr vol, bool local, uint64_t offset,
                  uint64_t length, const std::function<void(std::string_view)>& consume) {
  if (!local) return ReadStream(conn, vol, offset, length, consume);
  return ReadFile(FreeString(virStorageVolGetPath(vol)), offset, length, consume);
}

}  // namespace vdswap
