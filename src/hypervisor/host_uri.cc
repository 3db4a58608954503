#include "hypervisor/host_uri.h"

#include <set>

namespace vdswap {

namespace {

constexpr char kAllowed[] =
    "allowed: qemu:///system, qemu+unix:///system, qemu+ssh://[USER@]HOST[:PORT]/system, "
    "qemu+tls://HOST[:PORT]/system, qemu+tcp://HOST[:PORT]/system";

const std::set<std::string>& ParamsFor(const std::string& transport) {
  static const std::set<std::string> kLocal = {"socket", "mode"};
  static const std::set<std::string> kSsh = {"keyfile",   "known_hosts", "known_hosts_verify",
                                             "no_verify", "no_tty",      "sshauth",
                                             "socket",    "mode",        "proxy"};
  static const std::set<std::string> kTls = {"pkipath", "no_verify", "tls_priority"};
  static const std::set<std::string> kNone = {};
  if (transport.empty() || transport == "unix") return kLocal;
  if (transport == "ssh") return kSsh;
  if (transport == "tls") return kTls;
  return kNone;
}

bool IsAuthorityChar(char c) {
  return isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_' || c == ':' ||
         c == '@' || c == '[' || c == ']';
}

// Values may be paths and simple words; nothing that could be read as a second URI part.
bool IsParamValueChar(char c) {
  return isalnum(static_cast<unsigned char>(c)) || c == '/' || c == '.' || c == '-' || c == '_' ||
         c == ':' || c == ',' || c == '+' || c == '@';
}

}  // namespace

Result<HostUri> ParseHostUri(std::string_view text) {
  const std::string uri(text);
  auto bad = [&](const std::string& why) {
    return InvalidArgument("host uri '" + uri + "': " + why + " (" + kAllowed + ")");
  };
  for (char c : uri) {
    if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f) {
      return InvalidArgument("host uri must not contain spaces or control characters");
    }
  }
  size_t sep = uri.find("://");
  if (sep == std::string::npos) return bad("not a libvirt URI");
  std::string scheme = uri.substr(0, sep);
  HostUri out;
  size_t plus = scheme.find('+');
  if (scheme.substr(0, plus) != "qemu") return bad("only the qemu driver is supported");
  if (plus != std::string::npos) out.transport = scheme.substr(plus + 1);
  if (!out.transport.empty() && out.transport != "unix" && out.transport != "ssh" &&
      out.transport != "tls" && out.transport != "tcp") {
    return bad("transport '" + out.transport + "' is not allowed");
  }
  std::string rest = uri.substr(sep + 3);
  size_t slash = rest.find('/');
  if (slash == std::string::npos) return bad("no path; use /system");
  out.authority = rest.substr(0, slash);
  rest = rest.substr(slash);
  size_t query = rest.find('?');
  out.path = rest.substr(0, query);
  if (out.path != "/system" && out.path != "/session") return bad("the path must be /system");
  const bool local = out.transport.empty() || out.transport == "unix";
  if (local && !out.authority.empty()) return bad("a local URI has no host");
  if (!local && out.authority.empty()) return bad("a remote URI needs a host");
  for (char c : out.authority) {
    if (!IsAuthorityChar(c)) {
      return bad("the host part may not contain '" + std::string(1, c) + "'");
    }
  }
  if (query != std::string::npos) {
    std::string q = rest.substr(query + 1);
    const auto& allowed = ParamsFor(out.transport);
    size_t pos = 0;
    while (pos <= q.size()) {
      size_t amp = q.find_first_of("&;", pos);
      std::string kv = q.substr(pos, amp == std::string::npos ? std::string::npos : amp - pos);
      pos = amp == std::string::npos ? q.size() + 1 : amp + 1;
      if (kv.empty()) continue;
      size_t eq = kv.find('=');
      std::string key = kv.substr(0, eq);
      std::string value = eq == std::string::npos ? "" : kv.substr(eq + 1);
      if (!allowed.count(key)) {
        return bad("parameter '" + key + "' is not allowed with " +
                   (out.transport.empty() ? std::string("qemu") : "qemu+" + out.transport));
      }
      for (char c : value) {
        if (!IsParamValueChar(c)) {
          return bad("parameter '" + key + "' has a character that is not allowed");
        }
      }
      out.params[key] = value;
    }
  }
  if (out.transport == "tcp") {
    out.warning =
        "qemu+tcp is unencrypted and libvirt's TCP listener is usually unauthenticated; "
        "prefer qemu+ssh or qemu+tls outside a lab";
  }
  return out;
}

}  // namespace vdswap
