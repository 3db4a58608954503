#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/status.h"
#include "core/unique_fd.h"
#include "hypervisor/hypervisor.h"

namespace vdswap {

// The bytes under a VM's agent channel: a unix socket on the VM's host, or a libvirt
// stream for a remote host. One caller at a time.
class ByteStream {
 public:
  using Deadline = std::chrono::steady_clock::time_point;
  virtual ~ByteStream() = default;
  // Sends all of `data` by `deadline`; kUnavailable when the stream fails or the deadline
  // passes first.
  virtual Status Send(std::string_view data, Deadline deadline) = 0;
  // Waits until bytes arrive or `deadline` passes and appends what arrived to `out`.
  // Returns how many bytes (0: the deadline passed); kUnavailable when the stream closed
  // or failed.
  virtual Result<size_t> Receive(std::string& out, Deadline deadline) = 0;
};

// A connected stream socket (non-blocking; ownership of `fd` moves in).
std::unique_ptr<ByteStream> SocketByteStream(UniqueFd fd);
// Connects to the unix socket at `path` (QEMU's end of the VM's agent channel) without
// waiting: kUnavailable when nobody listens there or its backlog is full.
Result<std::unique_ptr<ByteStream>> ConnectUnixSocket(const std::string& path);

// The host end of a VM's agent channel over a ByteStream: JSON lines
// (protocol/agent_protocol.h), each request with an id of this channel's own, so that
// replies to abandoned requests (an earlier call's, another client's) are skipped.
// The guest may be hostile: a line longer than kMaxReplyLine, or more than
// kMaxBytesPerCall received during one call, fails the call at once ("agent of vm 'X'
// sent an invalid reply: ...", kInternal) and the channel with it; a line that is not a
// reply (DecodeReply) is skipped like noise, and a call that gets no valid reply by its
// deadline says it saw one. Each byte is scanned for a newline once.
class LineAgentChannel : public AgentChannel {
 public:
  // REQUIRES: stream != nullptr.
  LineAgentChannel(std::unique_ptr<ByteStream> stream, std::string vm);

  Result<Json> Call(AgentOp op, const Json& fields, std::chrono::milliseconds timeout) override;

  // The most bytes one call reads before it gives up on the guest.
  static constexpr size_t kMaxBytesPerCall = size_t{8} << 20;

 private:
  std::unique_ptr<ByteStream> stream_;
  std::string vm_;
  std::string prefix_;  // random per channel: ids never repeat across channels
  uint64_t seq_ = 0;
  std::string buf_;     // received bytes not yet consumed
  size_t scanned_ = 0;  // bytes of buf_ known to hold no newline
  Status broken_;       // why the guest can no longer be read on this channel
};

}  // namespace vdswap
