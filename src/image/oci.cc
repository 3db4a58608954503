#include "image/oci.h"

#include "core/json.h"

namespace vdswap {

namespace {

bool IsHex64(std::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// "sha256:<64 hex>" -> hex.
Result<std::string> DigestHex(const Json& v, const std::string& what) {
  if (!v.is_string()) return InvalidArgument(what + " must be a string digest");
  std::string s = v.get<std::string>();
  constexpr std::string_view kPrefix = "sha256:";
  if (s.rfind(kPrefix, 0) != 0 || !IsHex64(std::string_view(s).substr(kPrefix.size()))) {
    return InvalidArgument(what + " '" + s + "' is not a sha256 digest");
  }
  return s.substr(kPrefix.size());
}

bool IsSafeRelative(const std::string& p) {
  if (p.empty() || p[0] == '/') return false;
  size_t start = 0;
  while (start <= p.size()) {
    size_t slash = p.find('/', start);
    std::string part = p.substr(start, slash == std::string::npos ? slash : slash - start);
    if (part == "..") return false;
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  return p.find('\0') == std::string::npos;
}

Result<std::vector<std::string>> StringArray(const Json& obj, const char* key,
                                             const std::string& what) {
  std::vector<std::string> out;
  if (!obj.contains(key) || obj[key].is_null()) return out;
  if (!obj[key].is_array()) return InvalidArgument(what + "." + key + " must be an array");
  for (const auto& v : obj[key]) {
    if (!v.is_string()) return InvalidArgument(what + "." + key + " must hold strings");
    out.push_back(v.get<std::string>());
  }
  return out;
}

}  // namespace

Result<ImageLayout> ParseDockerManifest(std::string_view text) {
  auto j = ParseJson(text, "docker-archive manifest.json");
  if (!j.ok()) return j.status();
  if (!j->is_array() || j->empty() || !(*j)[0].is_object()) {
    return InvalidArgument("docker-archive manifest.json must be a non-empty array of objects");
  }
  const Json& m = (*j)[0];
  ImageLayout layout;
  if (!m.contains("Config") || !m["Config"].is_string()) {
    return InvalidArgument("docker-archive manifest.json: 'Config' is missing");
  }
  layout.config_path = m["Config"].get<std::string>();
  if (!IsSafeRelative(layout.config_path)) {
    return InvalidArgument("docker-archive manifest.json: 'Config' path is unsafe");
  }
  ASSIGN_OR_RETURN(auto layers, StringArray(m, "Layers", "docker-archive manifest.json"));
  if (layers.empty()) return InvalidArgument("docker-archive manifest.json: 'Layers' is empty");
  for (const auto& l : layers) {
    if (!IsSafeRelative(l)) {
      return InvalidArgument("docker-archive manifest.json: layer path '" + l + "' is unsafe");
    }
    layout.layers.push_back({l, ""});
  }
  // Newer `docker save` names blobs by digest: blobs/sha256/<hex>. Verify those.
  auto digest_of = [](const std::string& path) -> std::string {
    constexpr std::string_view kBlobs = "blobs/sha256/";
    if (path.rfind(kBlobs, 0) == 0 && IsHex64(std::string_view(path).substr(kBlobs.size()))) {
      return path.substr(kBlobs.size());
    }
    return "";
  };
  layout.config_digest = digest_of(layout.config_path);
  for (auto& l : layout.layers) l.digest = digest_of(l.path);
  return layout;
}

Result<std::string> ParseOciIndex(std::string_view text) {
  auto j = ParseJson(text, "OCI index.json");
  if (!j.ok()) return j.status();
  if (!j->is_object() || !j->contains("manifests") || !(*j)["manifests"].is_array() ||
      (*j)["manifests"].empty() || !(*j)["manifests"][0].is_object()) {
    return InvalidArgument("OCI index.json: 'manifests' must be a non-empty array");
  }
  const Json& d = (*j)["manifests"][0];
  if (!d.contains("digest")) return InvalidArgument("OCI index.json: manifest has no 'digest'");
  return DigestHex(d["digest"], "OCI index.json manifests[0].digest");
}

Result<ImageLayout> ParseOciManifest(std::string_view text) {
  auto j = ParseJson(text, "OCI image manifest");
  if (!j.ok()) return j.status();
  if (!j->is_object() || !j->contains("config") || !(*j)["config"].is_object() ||
      !(*j)["config"].contains("digest")) {
    return InvalidArgument("OCI image manifest: 'config.digest' is missing");
  }
  ImageLayout layout;
  ASSIGN_OR_RETURN(layout.config_digest,
                   DigestHex((*j)["config"]["digest"], "OCI image manifest config.digest"));
  layout.config_path = "blobs/sha256/" + layout.config_digest;
  if (!j->contains("layers") || !(*j)["layers"].is_array()) {
    return InvalidArgument("OCI image manifest: 'layers' must be an array");
  }
  for (const auto& l : (*j)["layers"]) {
    if (!l.is_object() || !l.contains("digest")) {
      return InvalidArgument("OCI image manifest: a layer has no 'digest'");
    }
    ASSIGN_OR_RETURN(std::string hex, DigestHex(l["digest"], "OCI image manifest layer digest"));
    layout.layers.push_back({"blobs/sha256/" + hex, hex});
  }
  if (layout.layers.empty()) return InvalidArgument("OCI image manifest: no layers");
  return layout;
}

Result<ImageConfig> ParseImageConfig(std::string_view text) {
  auto j = ParseJson(text, "image config");
  if (!j.ok()) return j.status();
  if (!j->is_object()) return InvalidArgument("image config must be a JSON object");
  ImageConfig c;
  if (!j->contains("config") || (*j)["config"].is_null()) return c;
  const Json& cfg = (*j)["config"];
  if (!cfg.is_object()) return InvalidArgument("image config: 'config' must be an object");
  ASSIGN_OR_RETURN(c.entrypoint, StringArray(cfg, "Entrypoint", "image config"));
  ASSIGN_OR_RETURN(c.cmd, StringArray(cfg, "Cmd", "image config"));
  ASSIGN_OR_RETURN(c.env, StringArray(cfg, "Env", "image config"));
  if (cfg.contains("WorkingDir") && cfg["WorkingDir"].is_string()) {
    c.workdir = cfg["WorkingDir"].get<std::string>();
  }
  if (cfg.contains("Labels") && cfg["Labels"].is_object()) {
    for (const auto& [k, v] : cfg["Labels"].items()) {
      if (v.is_string()) c.labels[k] = v.get<std::string>();
    }
  }
  return c;
}

Result<AppManifest> ManifestFromConfig(const ImageConfig& config, const std::string& name,
                                       const std::function<bool(const std::string&)>& exists) {
  AppManifest m;
  m.name = name;
  auto version = config.labels.find("org.opencontainers.image.version");
  m.version = version != config.labels.end() ? version->second : "latest";
  m.start = config.entrypoint;
  m.start.insert(m.start.end(), config.cmd.begin(), config.cmd.end());
  if (m.start.empty()) {
    return InvalidArgument(
        "image config has neither Entrypoint nor Cmd, and the image has no "
        "/vdswap.json: nothing to start");
  }
  std::string path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  for (const auto& kv : config.env) {
    auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) continue;
    m.env[kv.substr(0, eq)] = kv.substr(eq + 1);
    if (kv.substr(0, eq) == "PATH") path = kv.substr(eq + 1);
  }
  if (m.start[0].find('/') == std::string::npos) {
    std::string found;
    size_t start = 0;
    while (found.empty() && start <= path.size()) {
      size_t colon = path.find(':', start);
      std::string dir = path.substr(start, colon == std::string::npos ? colon : colon - start);
      if (!dir.empty() && dir[0] == '/' && exists(dir + "/" + m.start[0])) {
        found = dir + "/" + m.start[0];
      }
      if (colon == std::string::npos) break;
      start = colon + 1;
    }
    if (found.empty()) {
      return InvalidArgument("image config starts '" + m.start[0] +
                             "', which is not found on the image's PATH");
    }
    m.start[0] = found;
  }
  if (!config.workdir.empty()) m.workdir = config.workdir;
  // Validate the result like any hand-written manifest.
  return ManifestFromJson(ManifestToJson(m));
}

}  // namespace vdswap
