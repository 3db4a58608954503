#include "image/manifest.h"

#include <set>

namespace vdswap {

namespace {

constexpr const char* kSignals[] = {"TERM", "INT", "QUIT", "HUP", "USR1", "USR2", "KILL"};

Status Bad(const std::string& field, const std::string& why) {
  return InvalidArgument("manifest: '" + field + "' " + why);
}

Status CheckKeys(const Json& obj, const std::string& where, const std::set<std::string>& allowed) {
  for (const auto& [k, v] : obj.items()) {
    if (!allowed.count(k)) {
      return InvalidArgument("manifest: unknown field '" + (where.empty() ? k : where + "." + k) +
                             "'");
    }
  }
  return Status::Ok();
}

Result<std::string> GetString(const Json& obj, const std::string& key, const std::string& field,
                              bool required) {
  if (!obj.contains(key)) {
    if (required) return Bad(field, "is required");
    return std::string();
  }
  if (!obj[key].is_string()) return Bad(field, "must be a string");
  std::string s = obj[key].get<std::string>();
  if (s.find('\0') != std::string::npos) return Bad(field, "must not contain NUL");
  return s;
}

Result<int> GetInt(const Json& obj, const std::string& key, const std::string& field, int fallback,
                   int lo, int hi) {
  if (!obj.contains(key)) return fallback;
  if (!obj[key].is_number_integer()) return Bad(field, "must be an integer");
  int64_t v = obj[key].get<int64_t>();
  if (v < lo || v > hi) {
    return Bad(field, "must be between " + std::to_string(lo) + " and " + std::to_string(hi));
  }
  return static_cast<int>(v);
}

bool IsAbsolute(const std::string& p) { return !p.empty() && p[0] == '/'; }

Result<std::vector<std::string>> GetArgv(const Json& obj, const std::string& key,
                                         const std::string& field, bool required) {
  if (!obj.contains(key)) {
    if (required) return Bad(field, "is required");
    return std::vector<std::string>();
  }
  const Json& a = obj[key];
  if (!a.is_array() || a.empty()) return Bad(field, "must be a non-empty array of strings");
  std::vector<std::string> argv;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!a[i].is_string()) return Bad(field + "[" + std::to_string(i) + "]", "must be a string");
    argv.push_back(a[i].get<std::string>());
    if (argv.back().find('\0') != std::string::npos) return Bad(field, "must not contain NUL");
  }
  if (!IsAbsolute(argv[0])) {
    return Bad(field + "[0]", "must be an absolute path, got '" + argv[0] + "'");
  }
  return argv;
}

bool IsFdName(std::string_view n) {
  if (n.empty() || n.size() > 64) return false;
  for (char c : n) {
    if (!isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') return false;
  }
  return true;
}

constexpr size_t kMaxSockets = 16;

Result<std::vector<AppManifest::Socket>> GetSockets(const Json& j) {
  std::vector<AppManifest::Socket> out;
  if (!j.contains("sockets")) return out;
  const Json& a = j["sockets"];
  if (!a.is_array()) return Bad("sockets", "must be an array of {name, listen}");
  if (a.size() > kMaxSockets) return Bad("sockets", "may hold at most 16 sockets");
  for (size_t i = 0; i < a.size(); ++i) {
    const std::string field = "sockets[" + std::to_string(i) + "]";
    if (!a[i].is_object()) return Bad(field, "must be an object {name, listen}");
    RETURN_IF_ERROR(CheckKeys(a[i], field, {"name", "listen"}));
    AppManifest::Socket sock;
    ASSIGN_OR_RETURN(sock.name, GetString(a[i], "name", field + ".name", true));
    if (!IsFdName(sock.name)) return Bad(field + ".name", "must match [A-Za-z0-9._-]{1,64}");
    ASSIGN_OR_RETURN(std::string listen, GetString(a[i], "listen", field + ".listen", true));
    auto addr = ParseSocketAddress(listen);
    if (!addr.ok()) return Bad(field + ".listen", addr.status().message());
    if (addr->family != SocketAddress::Family::kUnix && addr->port == 0) {
      return Bad(field + ".listen", "needs a port 1-65535");
    }
    sock.listen = *addr;
    for (const auto& other : out) {
      if (other.name == sock.name) return Bad(field + ".name", "repeats '" + sock.name + "'");
      if (other.listen == sock.listen) return Bad(field + ".listen", "repeats '" + listen + "'");
    }
    out.push_back(std::move(sock));
  }
  return out;
}

bool IsEnvName(std::string_view k) {
  if (k.empty() || isdigit(static_cast<unsigned char>(k[0]))) return false;
  for (char c : k) {
    if (!isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
  }
  return true;
}

Result<AppManifest::Stop> GetStop(const Json& s) {
  if (!s.is_object()) return Bad("stop", "must be an object");
  RETURN_IF_ERROR(CheckKeys(s, "stop", {"signal", "timeout_s", "drain_s"}));
  AppManifest::Stop stop;
  if (s.contains("signal")) {
    ASSIGN_OR_RETURN(stop.signal, GetString(s, "signal", "stop.signal", true));
    if (stop.signal.rfind("SIG", 0) == 0) stop.signal = stop.signal.substr(3);
    bool known = false;
    for (const char* sig : kSignals) known = known || stop.signal == sig;
    if (!known) return Bad("stop.signal", "must be one of TERM INT QUIT HUP USR1 USR2 KILL");
  }
  ASSIGN_OR_RETURN(stop.timeout_s, GetInt(s, "timeout_s", "stop.timeout_s", 10, 0, 3600));
  ASSIGN_OR_RETURN(stop.drain_s, GetInt(s, "drain_s", "stop.drain_s", 0, 0, 3600));
  return stop;
}

Result<AppManifest::Health> GetHealth(const Json& h) {
  if (!h.is_object()) return Bad("health", "must be an object");
  RETURN_IF_ERROR(CheckKeys(h, "health", {"exec", "http", "tcp", "interval_ms", "timeout_s"}));
  AppManifest::Health health;
  ASSIGN_OR_RETURN(health.exec, GetArgv(h, "exec", "health.exec", false));
  if (h.contains("http")) {
    ASSIGN_OR_RETURN(std::string url, GetString(h, "http", "health.http", true));
    auto parsed = ParseHttpUrl(url);
    if (!parsed.ok()) return Bad("health.http", parsed.status().message());
    health.http = *parsed;
  }
  if (h.contains("tcp")) {
    ASSIGN_OR_RETURN(std::string target, GetString(h, "tcp", "health.tcp", true));
    auto parsed = ParseSocketAddress(target);
    if (!parsed.ok()) return Bad("health.tcp", parsed.status().message());
    if (parsed->family == SocketAddress::Family::kUnix || parsed->port == 0) {
      return Bad("health.tcp", "needs ADDR:PORT with a non-zero port");
    }
    health.tcp = *parsed;
  }
  if (h.contains("exec") + h.contains("http") + h.contains("tcp") > 1) {
    return Bad("health", "takes one probe: exec, http or tcp");
  }
  ASSIGN_OR_RETURN(health.interval_ms,
                   GetInt(h, "interval_ms", "health.interval_ms", 1000, 10, 60000));
  ASSIGN_OR_RETURN(health.timeout_s, GetInt(h, "timeout_s", "health.timeout_s", 30, 1, 3600));
  return health;
}

Result<std::map<std::string, std::string>> GetEnv(const Json& e) {
  if (!e.is_object()) return Bad("env", "must be an object of strings");
  std::map<std::string, std::string> env;
  for (const auto& [k, v] : e.items()) {
    if (!IsEnvName(k)) return Bad("env." + k, "is not a valid variable name");
    if (!v.is_string()) return Bad("env." + k, "must be a string");
    env[k] = v.get<std::string>();
  }
  return env;
}

Result<AppManifest::Requires> GetRequires(const Json& r) {
  if (!r.is_object()) return Bad("requires", "must be an object");
  RETURN_IF_ERROR(CheckKeys(r, "requires", {"os_id", "os_version", "arch"}));
  AppManifest::Requires req;
  ASSIGN_OR_RETURN(req.os_id, GetString(r, "os_id", "requires.os_id", false));
  ASSIGN_OR_RETURN(req.os_version, GetString(r, "os_version", "requires.os_version", false));
  ASSIGN_OR_RETURN(req.arch, GetString(r, "arch", "requires.arch", false));
  if (!req.arch.empty() && req.arch != "x86_64" && req.arch != "aarch64") {
    return Bad("requires.arch", "must be x86_64 or aarch64");
  }
  return req;
}

}  // namespace

bool IsValidVersion(std::string_view v) {
  if (v.empty() || v.size() > 64) return false;
  for (char c : v) {
    if (!isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-' && c != '+') {
      return false;
    }
  }
  return true;
}

bool IsValidName(std::string_view name) {
  if (name.empty() || name.size() > 63) return false;
  auto ok_first = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!ok_first(name[0])) return false;
  for (char c : name) {
    if (!ok_first(c) && c != '.' && c != '_' && c != '-') return false;
  }
  return true;
}

Result<AppManifest> ParseManifest(std::string_view json_text) {
  auto j = ParseJson(json_text, "manifest");
  if (!j.ok()) return InvalidArgument("manifest: /vdswap.json is not valid JSON");
  return ManifestFromJson(*j);
}

Result<AppManifest> ManifestFromJson(const Json& j) {
  if (!j.is_object()) return InvalidArgument("manifest: /vdswap.json must be a JSON object");
  RETURN_IF_ERROR(CheckKeys(
      j, "",
      {"name", "version", "start", "workdir", "stop", "health", "env", "requires", "sockets"}));
  AppManifest m;
  ASSIGN_OR_RETURN(m.name, GetString(j, "name", "name", true));
  if (!IsValidName(m.name)) {
    return Bad("name", "must match [a-z0-9][a-z0-9._-]{0,62}, got '" + m.name + "'");
  }
  ASSIGN_OR_RETURN(m.version, GetString(j, "version", "version", true));
  if (!IsValidVersion(m.version)) {
    return Bad("version", "must be 1-64 of [A-Za-z0-9._+-], got '" + m.version + "'");
  }
  ASSIGN_OR_RETURN(m.start, GetArgv(j, "start", "start", true));
  if (j.contains("workdir")) {
    ASSIGN_OR_RETURN(m.workdir, GetString(j, "workdir", "workdir", true));
    if (!IsAbsolute(m.workdir)) return Bad("workdir", "must be an absolute path");
  }
  if (j.contains("stop")) {
    ASSIGN_OR_RETURN(m.stop, GetStop(j["stop"]));
  }
  if (j.contains("health")) {
    ASSIGN_OR_RETURN(m.health, GetHealth(j["health"]));
  }
  if (j.contains("env")) {
    ASSIGN_OR_RETURN(m.env, GetEnv(j["env"]));
  }
  ASSIGN_OR_RETURN(m.sockets, GetSockets(j));
  if (j.contains("requires")) {
    ASSIGN_OR_RETURN(m.requirements, GetRequires(j["requires"]));
  }
  return m;
}

Json ManifestToJson(const AppManifest& m) {
  Json j = {
      {"name", m.name},
      {"version", m.version},
      {"start", m.start},
      {"workdir", m.workdir},
      {"stop",
       {{"signal", m.stop.signal}, {"timeout_s", m.stop.timeout_s}, {"drain_s", m.stop.drain_s}}},
      {"health", {{"interval_ms", m.health.interval_ms}, {"timeout_s", m.health.timeout_s}}},
      {"env", m.env}};
  if (!m.health.exec.empty()) j["health"]["exec"] = m.health.exec;
  if (m.health.http) {
    j["health"]["http"] = "http://" + m.health.http->address.ToString() + m.health.http->path;
  }
  if (m.health.tcp) j["health"]["tcp"] = m.health.tcp->ToString();
  if (!m.sockets.empty()) {
    Json socks = Json::array();
    for (const auto& sock : m.sockets) {
      socks.push_back({{"name", sock.name}, {"listen", sock.listen.ToString()}});
    }
    j["sockets"] = socks;
  }
  Json req = Json::object();
  if (!m.requirements.os_id.empty()) req["os_id"] = m.requirements.os_id;
  if (!m.requirements.os_version.empty()) req["os_version"] = m.requirements.os_version;
  if (!m.requirements.arch.empty()) req["arch"] = m.requirements.arch;
  if (!req.empty()) j["requires"] = req;
  return j;
}

OsRelease ParseOsRelease(std::string_view text) {
  OsRelease out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    std::string_view line = text.substr(pos, nl == std::string_view::npos ? nl : nl - pos);
    pos = nl == std::string_view::npos ? text.size() : nl + 1;
    size_t eq = line.find('=');
    if (line.empty() || line[0] == '#' || eq == std::string_view::npos) continue;
    std::string key(line.substr(0, eq));
    std::string value(line.substr(eq + 1));
    while (!value.empty() && (value.back() == '\r' || value.back() == ' ')) value.pop_back();
    if (value.size() >= 2 && (value[0] == '"' || value[0] == '\'') && value.back() == value[0]) {
      value = value.substr(1, value.size() - 2);
    }
    out[key] = value;
  }
  return out;
}

Status CheckRequires(const AppManifest& m, const OsRelease& os, std::string_view arch) {
  auto get = [&os](const char* k) {
    auto it = os.find(k);
    return it == os.end() ? std::string("(none)") : it->second;
  };
  const auto& r = m.requirements;
  if (!r.os_id.empty() && get("ID") != r.os_id) {
    return FailedPrecondition("app '" + m.name + "' requires os_id '" + r.os_id +
                              "' but the OS is '" + get("ID") + "'");
  }
  if (!r.os_version.empty() && get("VERSION_ID") != r.os_version) {
    return FailedPrecondition("app '" + m.name + "' requires os_version '" + r.os_version +
                              "' but the OS has '" + get("VERSION_ID") + "'");
  }
  if (!r.arch.empty() && arch != r.arch) {
    return FailedPrecondition("app '" + m.name + "' requires arch '" + r.arch +
                              "' but the machine is '" + std::string(arch) + "'");
  }
  return Status::Ok();
}

}  // namespace vdswap
