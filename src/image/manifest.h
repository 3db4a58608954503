#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/json.h"
#include "core/status.h"

namespace vdswap {

// The app manifest, /vdswap.json at the root of an app image (DESIGN §2). Every path is
// a path inside the app image. Shared by the image builder and the guest agent.
struct AppManifest {
  struct Stop {
    std::string signal = "TERM";  // TERM INT QUIT HUP USR1 USR2 KILL
    int timeout_s = 10;           // then SIGKILL
  };
  struct Health {
    std::vector<std::string> exec;  // empty: a running app counts as healthy
    int interval_ms = 1000;
    int timeout_s = 30;  // how long a fresh start may take to become healthy
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

// KEY=value pairs of an os-release file (quotes removed).
using OsRelease = std::map<std::string, std::string>;
OsRelease ParseOsRelease(std::string_view text);

// Checks the manifest's `requires` against an OS and CPU architecture; kFailedPrecondition
// says which requirement is not met.
Status CheckRequires(const AppManifest& m, const OsRelease& os, std::string_view arch);

}  // namespace vdswap
