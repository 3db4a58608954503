#include "hypervisor/line_agent_channel.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cerrno>
#include <cstring>
#include <random>

#include "protocol/agent_protocol.h"

namespace vdswap {

namespace {

using SteadyClock = std::chrono::steady_clock;

std::string Errno(int err) { return std::strerror(err); }

// Milliseconds until `deadline` for poll(), at least 0.
int PollTimeout(ByteStream::Deadline deadline) {
  auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - SteadyClock::now());
  return static_cast<int>(std::max<int64_t>(0, std::min<int64_t>(left.count(), 60'000)));
}

class SocketStream : public ByteStream {
 public:
  explicit SocketStream(UniqueFd fd) : fd_(std::move(fd)) {}

  Status Send(std::string_view data, Deadline deadline) override {
    while (!data.empty()) {
      ssize_t n = ::send(fd_.get(), data.data(), data.size(), MSG_NOSIGNAL);
      if (n > 0) {
        data.remove_prefix(static_cast<size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno != EAGAIN) return Unavailable("send: " + Errno(errno));
      if (SteadyClock::now() >= deadline) return Unavailable("send: timed out");
      pollfd p{fd_.get(), POLLOUT, 0};
      ::poll(&p, 1, PollTimeout(deadline));
    }
    return Status::Ok();
  }

  Result<size_t> Receive(std::string& out, Deadline deadline) override {
    char chunk[16384];
    while (true) {
      ssize_t n = ::recv(fd_.get(), chunk, sizeof chunk, 0);
      if (n > 0) {
        out.append(chunk, static_cast<size_t>(n));
        return static_cast<size_t>(n);
      }
      if (n == 0) return Unavailable("end of stream");
      if (errno == EINTR) continue;
      if (errno != EAGAIN) return Unavailable("recv: " + Errno(errno));
      if (SteadyClock::now() >= deadline) return size_t{0};
      pollfd p{fd_.get(), POLLIN, 0};
      ::poll(&p, 1, PollTimeout(deadline));
    }
  }

 private:
  UniqueFd fd_;
};

}  // namespace

std::unique_ptr<ByteStream> SocketByteStream(UniqueFd fd) {
  return std::make_unique<SocketStream>(std::move(fd));
}

Result<std::unique_ptr<ByteStream>> ConnectUnixSocket(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) return InvalidArgument("socket path too long: " + path);
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return Unavailable("socket: " + Errno(errno));
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    // A unix socket connects at once or not at all (EAGAIN: the listener's backlog is full).
    return Unavailable("cannot connect to " + path + ": " + Errno(errno));
  }
  return SocketByteStream(std::move(fd));
}

LineAgentChannel::LineAgentChannel(std::unique_ptr<ByteStream> stream, std::string vm)
    : stream_(std::move(stream)), vm_(std::move(vm)) {
  std::random_device rd;
  prefix_ = std::to_string(rd()) + "-";
}

Result<Json> LineAgentChannel::Call(AgentOp op, const Json& fields,
                                    std::chrono::milliseconds timeout) {
  RETURN_IF_ERROR(broken_);
  const auto deadline = SteadyClock::now() + timeout;
  const Json id = prefix_ + std::to_string(++seq_);
  const std::string op_name(AgentOpName(op));
  Status sent = stream_->Send(EncodeRequest(id, op, fields) + "\n", deadline);
  if (!sent.ok()) {
    return Unavailable("agent of vm '" + vm_ + "': cannot send '" + op_name +
                       "': " + sent.message());
  }
  size_t received = 0;
  Status invalid;  // the last line that was not a reply
  while (true) {
    size_t nl;
    while ((nl = buf_.find('\n', scanned_)) != std::string::npos) {
      auto reply = DecodeReply(std::string_view(buf_).substr(0, nl));
      buf_.erase(0, nl + 1);
      scanned_ = 0;
      if (!reply.ok()) invalid = reply.status();
      // A late reply to an earlier request, or noise.
      if (!reply.ok() || reply->id != id) continue;
      if (reply->result.ok()) return std::move(reply->result);
      const Status& err = reply->result.status();
      return Status(err.code(), "agent of vm '" + vm_ + "': " + err.message());
    }
    scanned_ = buf_.size();
    if (buf_.size() > kMaxReplyLine || received > kMaxBytesPerCall) {
      buf_.clear();
      broken_ = Internal(
          "agent of vm '" + vm_ + "' sent an invalid reply: " +
          (received > kMaxBytesPerCall
               ? "more than " + std::to_string(kMaxBytesPerCall) + " bytes during '" + op_name + "'"
               : "a line longer than " + std::to_string(kMaxReplyLine) + " bytes"));
      return broken_;
    }
    if (SteadyClock::now() >= deadline) {
      if (!invalid.ok()) {
        return Internal("agent of vm '" + vm_ + "' sent an invalid reply to '" + op_name +
                        "': " + invalid.message());
      }
      return Unavailable("agent of vm '" + vm_ + "' did not answer '" + op_name + "' within " +
                         std::to_string(timeout.count()) + " ms");
    }
    auto got = stream_->Receive(buf_, deadline);
    if (!got.ok()) {
      return Unavailable("agent channel of vm '" + vm_ + "' closed during '" + op_name +
                         "': " + got.status().message());
    }
    received += *got;
  }
}

}  // namespace vdswap
