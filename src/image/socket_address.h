#pragma once

#include <string>
#include <string_view>

#include "core/status.h"

namespace vdswap {

// A socket address as app manifests write it: TCP "ADDR:PORT" (numeric IPv4),
// "[ADDR]:PORT" (numeric IPv6), or "unix:/absolute/path". "localhost" stands for
// 127.0.0.1. Names are not resolved: the agent is static and the guest may have no DNS.
struct SocketAddress {
  enum class Family { kInet, kInet6, kUnix };
  Family family = Family::kInet;
  std::string host;  // numeric address without brackets; empty for kUnix
  int port = 0;      // 1-65535 for TCP (0 only in "listen" addresses: any port)
  std::string path;  // kUnix only

  // The canonical text form, which ParseSocketAddress reads back.
  std::string ToString() const;
  bool operator==(const SocketAddress&) const = default;
};

// kInvalidArgument naming what is wrong ("port out of range", "not a numeric address").
Result<SocketAddress> ParseSocketAddress(std::string_view text);

// An HTTP probe target: "http://HOST[:PORT][/PATH]" with HOST as in SocketAddress
// (port 80 by default, path "/" by default). https is not supported (no TLS in the agent).
struct HttpUrl {
  SocketAddress address;
  std::string path;  // starts with "/"
  bool operator==(const HttpUrl&) const = default;
};
Result<HttpUrl> ParseHttpUrl(std::string_view text);

}  // namespace vdswap
