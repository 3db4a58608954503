#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/json.h"
#include "core/status.h"
#include "image/socket_address.h"

namespace vdswap {

// The app manifest, /vdswap.json at the root of an app image (docs/architecture.md). Every path is
// a path inside the app image. Shared by the image builder and the guest agent.
struct AppManifest {
  struct Stop {
    std::string signal = "TERM";  // TERM INT QUIT HUP USR1 USR2 KILL
    int timeout_s = 10;           // then SIGKILL
    int drain_s = 0;  // after taking the app out (stop.exec or the signal), before the deadline
  };
  // At most one probe; none: a running app counts as healthy.
  struct Health {
    std::vector<std::string> exec;     // healthy when it exits 0
    std::optional<HttpUrl> http;       // healthy on a 2xx/3xx answer within the interval
    std::optional<SocketAddress> tcp;  // healthy when it accepts a connection
    int interval_ms = 1000;
    int timeout_s = 30;  // how long a fresh start may take to become healthy
    bool has_probe() const { return !exec.empty() || http.has_value() || tcp.has_value(); }
  };
  // A listening socket the agent creates and holds for the app across restarts and
  // swaps, passed with systemd's socket activation protocol (LISTEN_FDS, fd 3 on).
  struct Socket {
    std::string name;  // LISTEN_FDNAMES entry: [A-Za-z0-9._-]{1,64}
    SocketAddress listen;
    bool operator==(const Socket&) const = default;
  };
  struct Requires {
    std::string os_id;       // os-release ID, e.g. "vdswap-testos"
    std::string os_version;  // os-release VERSION_ID
    std::string arch;        // x86_64 or aarch64
  };

  std::string name;
  std::string version;
  std::vector<std::string> start;
  std::string workdir = "/";
  Stop stop;
  Health health;
  std::map<std::string, std::string> env;
  Requires requirements;
  std::vector<Socket> sockets;  // in LISTEN_FDS order
};

// Parses and validates manifest JSON. kInvalidArgument names the field at fault: unknown
// fields, a missing `start`, relative paths, wrong types, out-of-range numbers.
Result<AppManifest> ParseManifest(std::string_view json_text);
// Validates an already-parsed JSON value (see ParseManifest).
Result<AppManifest> ManifestFromJson(const Json& j);
// The canonical JSON form (every field, defaults included).
Json ManifestToJson(const AppManifest& m);

// True for names like "hello", "web-api.v2": [a-z0-9][a-z0-9._-]{0,62}.
bool IsValidName(std::string_view name);
// True for versions like "1.2.0", "24.04", "2+deb12": [A-Za-z0-9._+-]{1,64}.
bool IsValidVersion(std::string_view v);

// KEY=value pairs of an os-release file (quotes removed).
using OsRelease = std::map<std::string, std::string>;
OsRelease ParseOsRelease(std::string_view text);

// Checks the manifest's `requires` against an OS and CPU architecture; kFailedPrecondition
// says which requirement is not met.
Status CheckRequires(const AppManifest& m, const OsRelease& os, std::string_view arch);

}  // namespace vdswap
