#include "fleet/template_store.h"

#include <charconv>
#include <limits>

#include "fleet/nics.h"
#include "image/manifest.h"

namespace vdswap {

namespace {

Template FromRow(const DbRow& r) {
  Template t{r.Text(0), r.Int(1), r.Text(2), r.Text(3), r.Int(4), r.Int(5), r.Int(6), {}};
  Json networks = Json::parse(r.Text(7), nullptr, /*allow_exceptions=*/false);
  if (networks.is_array()) {
    for (const auto& n : networks) {
      if (n.is_string()) t.networks.push_back(n.get<std::string>());
    }
  }
  return t;
}

constexpr char kColumns[] =
    "name, version, os_digest, app_digest, memory_mib, cpus, data_bytes, networks FROM templates";

}  // namespace

Result<int64_t> ParseSize(const std::string& s) {
  int64_t n = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (ec != std::errc() || n <= 0) {
    return InvalidArgument("size '" + s + "' is not like 512M or 1G");
  }
  std::string unit(end, s.data() + s.size());
  int shift = unit.empty() ? 0 : unit == "K" ? 10 : unit == "M" ? 20 : unit == "G" ? 30 : -1;
  if (shift < 0) return InvalidArgument("size '" + s + "' has an unknown unit (K, M or G)");
  if (n > (std::numeric_limits<int64_t>::max() >> shift)) {
    return InvalidArgument("size '" + s + "' is too large");
  }
  return n << shift;
}

Result<Template> TemplateStore::Insert(Template t) {
  if (t.memory_mib < 64 || t.memory_mib > 1 << 20) return InvalidArgument("memory out of range");
  if (t.cpus < 1 || t.cpus > 256) return InvalidArgument("cpus out of range");
  if (t.data_bytes < (16 << 20)) return InvalidArgument("data disk must be at least 16M");
  ASSIGN_OR_RETURN(ImageInfo os, images_.Resolve("sha256:" + t.os_digest, ImageKind::kOs));
  ASSIGN_OR_RETURN(ImageInfo app, images_.Resolve("sha256:" + t.app_digest, ImageKind::kApp));
  auto manifest = ManifestFromJson(app.meta.value("manifest", Json::object()));
  if (!manifest.ok()) return manifest.status();
  OsRelease os_release;
  const Json release = os.meta.value("os_release", Json::object());
  for (const auto& [k, v] : release.items()) {
    if (v.is_string()) os_release[k] = v.get<std::string>();
  }
  RETURN_IF_ERROR(
      CheckRequires(*manifest, os_release, "x86_64").WithContext("template '" + t.Ref() + "'"));
  int64_t now = clock_.UnixSeconds();
  RETURN_IF_ERROR(
      db_.Exec("INSERT INTO templates (name, version, os_digest, app_digest, memory_mib, cpus, "
               "data_bytes, created_at, networks) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
               {t.name, t.version, t.os_digest, t.app_digest, t.memory_mib, t.cpus, t.data_bytes,
                now, DumpJson(Json(t.networks))})
          .WithContext("template '" + t.Ref() + "'"));
  return t;
}

Result<Template> TemplateStore::Create(const std::string& name, const std::string& os_ref,
                                       const std::string& app_ref, const TemplateShape& shape) {
  if (!IsValidName(name)) return InvalidArgument("template name '" + name + "' is not valid");
  ASSIGN_OR_RETURN(auto rows, db_.Query("SELECT 1 FROM templates WHERE name = ?1", {name}));
  if (!rows.empty()) {
    return AlreadyExists("template '" + name + "' exists; make a new version with update");
  }
  ASSIGN_OR_RETURN(ImageInfo os, images_.Resolve(os_ref, ImageKind::kOs));
  ASSIGN_OR_RETURN(ImageInfo app, images_.Resolve(app_ref, ImageKind::kApp));
  Template t{name, 1, os.digest, app.digest};
  t.memory_mib = shape.memory_mib.value_or(256);
  t.cpus = shape.cpus.value_or(1);
  t.data_bytes = shape.data_bytes.value_or(1ll << 30);
  ASSIGN_OR_RETURN(t.networks, ParseNetworks(shape.networks));
  return Insert(t);
}

Result<Template> TemplateStore::Update(const std::string& name, const std::string& os_ref,
                                       const std::string& app_ref, const TemplateShape& shape) {
  ASSIGN_OR_RETURN(Template t, Get(name));
  if (os_ref.empty() && app_ref.empty() && !shape.memory_mib && !shape.cpus) {
    return InvalidArgument("template update needs --os, --app or a new shape");
  }
  if (!shape.networks.empty()) {
    return InvalidArgument("a template's networks are fixed at create (VMs keep their NICs)");
  }
  if (!os_ref.empty()) {
    ASSIGN_OR_RETURN(ImageInfo os, images_.Resolve(os_ref, ImageKind::kOs));
    t.os_digest = os.digest;
  }
  if (!app_ref.empty()) {
    ASSIGN_OR_RETURN(ImageInfo app, images_.Resolve(app_ref, ImageKind::kApp));
    t.app_digest = app.digest;
  }
  if (shape.memory_mib) t.memory_mib = *shape.memory_mib;
  if (shape.cpus) t.cpus = *shape.cpus;
  // The data disk is the VM's state: its size is fixed at creation.
  ++t.version;
  return Insert(t);
}

Result<Template> TemplateStore::Get(const std::string& ref) {
  auto colon = ref.find(':');
  std::string name = ref.substr(0, colon);
  int64_t version = 0;
  if (colon != std::string::npos) {
    std::string v = ref.substr(colon + 1);
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), version);
    if (ec != std::errc() || p != v.data() + v.size() || version <= 0) {
      return InvalidArgument("template reference '" + ref + "' is not NAME or NAME:VERSION");
    }
  }
  ASSIGN_OR_RETURN(auto rows,
                   db_.Query(std::string("SELECT ") + kColumns +
                                 " WHERE name = ?1 AND (?2 = 0 OR version = ?2) ORDER BY version "
                                 "DESC LIMIT 1",
                             {name, version}));
  if (rows.empty()) return NotFound("template '" + ref + "' not found");
  return FromRow(rows[0]);
}

Result<std::vector<Template>> TemplateStore::List() {
  ASSIGN_OR_RETURN(auto rows,
                   db_.Query(std::string("SELECT ") + kColumns + " ORDER BY name, version"));
  std::vector<Template> out;
  for (const auto& r : rows) out.push_back(FromRow(r));
  return out;
}

Result<std::vector<int64_t>> TemplateStore::Versions(const std::string& name) {
  ASSIGN_OR_RETURN(auto rows, db_.Query("SELECT version FROM templates WHERE name = ?1 ORDER BY "
                                        "version",
                                        {name}));
  std::vector<int64_t> out;
  for (const auto& r : rows) out.push_back(r.Int(0));
  return out;
}

Result<int64_t> TemplateStore::Count() {
  ASSIGN_OR_RETURN(auto rows, db_.Query("SELECT count(*) FROM templates"));
  return rows.at(0).Int(0);
}

}  // namespace vdswap
