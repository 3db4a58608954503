#pragma once

#include <map>
#include <string>
#include <string_view>

#include "core/status.h"

namespace vdswap {

// A host's libvirt connection URI, checked against what vdswap allows. libvirt URIs can
// run commands (qemu+ext's `command=`, ssh's `netcat=`) and name arbitrary sockets, and
// host URIs arrive through the API, so only these are accepted:
//   qemu:///system             the local libvirtd          (also qemu+unix:///system)
//   qemu+ssh://[user@]host[:port]/system     params: keyfile known_hosts known_hosts_verify
//                                            no_verify no_tty sshauth socket mode proxy
//   qemu+tls://host[:port]/system            params: pkipath no_verify tls_priority
//   qemu+tcp://host[:port]/system            unencrypted, unauthenticated: a warning
// "/session" may stand for "/system". Everything else is kInvalidArgument with a message
// that says what is allowed.
struct HostUri {
  std::string transport;  // "" (local), "unix", "ssh", "tls" or "tcp"
  std::string authority;  // [user@]host[:port]; empty for local and unix
  std::string path;       // "/system" or "/session"
  std::map<std::string, std::string> params;
  std::string warning;  // non-empty for transports an operator should know are unsafe

  // The libvirtd of this machine (qemu:///…, qemu+unix:///…): the host's files and
  // sockets (pool directories, agent sockets) are this machine's to open directly.
  bool IsLocal() const { return transport.empty() || transport == "unix"; }
};

Result<HostUri> ParseHostUri(std::string_view uri);

}  // namespace vdswap
