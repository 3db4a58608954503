#include "image/socket_address.h"

#include <arpa/inet.h>

#include <charconv>

namespace vdswap {

namespace {

constexpr size_t kMaxUnixPath = 107;  // sizeof(sockaddr_un::sun_path) - 1

Result<int> ParsePort(std::string_view text, std::string_view whole) {
  int port = -1;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), port);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || port < 0 ||
      port > 65535) {
    return InvalidArgument("'" + std::string(whole) + "': port must be 0-65535");
  }
  return port;
}

bool IsInet(const std::string& host, int family) {
  unsigned char buf[16];
  return inet_pton(family, host.c_str(), buf) == 1;
}

}  // namespace

std::string SocketAddress::ToString() const {
  switch (family) {
    case Family::kUnix:
      return "unix:" + path;
    case Family::kInet6:
      return "[" + host + "]:" + std::to_string(port);
    case Family::kInet:
      break;
  }
  return host + ":" + std::to_string(port);
}

Result<SocketAddress> ParseSocketAddress(std::string_view text) {
  const std::string whole(text);
  SocketAddress a;
  if (text.rfind("unix:", 0) == 0) {
    a.family = SocketAddress::Family::kUnix;
    a.path = whole.substr(5);
    if (a.path.empty() || a.path[0] != '/') {
      return InvalidArgument("'" + whole + "': a unix socket needs an absolute path");
    }
    if (a.path.size() > kMaxUnixPath) {
      return InvalidArgument("'" + whole + "': unix socket path longer than 107 bytes");
    }
    return a;
  }
  size_t colon;
  if (!text.empty() && text[0] == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return InvalidArgument("'" + whole + "': IPv6 must be written [ADDR]:PORT");
    }
    a.family = SocketAddress::Family::kInet6;
    a.host = whole.substr(1, close - 1);
    colon = close + 1;
    if (!IsInet(a.host, AF_INET6)) {
      return InvalidArgument("'" + whole + "': '" + a.host + "' is not a numeric IPv6 address");
    }
  } else {
    colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      return InvalidArgument("'" + whole + "': expected ADDR:PORT, [ADDR]:PORT or unix:/PATH");
    }
    a.host = whole.substr(0, colon);
    if (a.host == "localhost") a.host = "127.0.0.1";
    if (!IsInet(a.host, AF_INET)) {
      return InvalidArgument("'" + whole + "': '" + a.host +
                             "' is not a numeric IPv4 address (IPv6 goes in brackets)");
    }
  }
  ASSIGN_OR_RETURN(a.port, ParsePort(text.substr(colon + 1), text));
  return a;
}

Result<HttpUrl> ParseHttpUrl(std::string_view text) {
  const std::string whole(text);
  constexpr std::string_view kScheme = "http://";
  if (text.rfind(kScheme, 0) != 0) {
    return InvalidArgument("'" + whole + "': only http:// URLs can be probed");
  }
  std::string_view rest = text.substr(kScheme.size());
  size_t slash = rest.find('/');
  std::string authority(rest.substr(0, slash));
  HttpUrl url;
  url.path = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  for (char c : url.path) {
    if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f) {
      return InvalidArgument("'" + whole + "': the path must not contain spaces or controls");
    }
  }
  // Default port 80 when none is given (an IPv6 authority ends in ']' then).
  bool has_port =
      !authority.empty() && authority.back() != ']' &&
      authority.find(':', authority.rfind(']') == std::string::npos ? 0 : authority.rfind(']')) !=
          std::string::npos;
  if (!has_port) authority += ":80";
  auto addr = ParseSocketAddress(authority);
  if (!addr.ok()) return InvalidArgument("'" + whole + "': " + addr.status().message());
  if (addr->family == SocketAddress::Family::kUnix || addr->port == 0) {
    return InvalidArgument("'" + whole + "': needs a TCP host and a non-zero port");
  }
  url.address = *addr;
  return url;
}

}  // namespace vdswap
