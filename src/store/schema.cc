#include "store/schema.h"

namespace vdswap {

const std::vector<std::string>& SchemaMigrations() {
  static const std::vector<std::string> kMigrations = {
      // 1: the fleet's inventory, rollouts and the per-VM swap journal.
      R"sql(
CREATE TABLE hosts (
  name        TEXT PRIMARY KEY,
  uri         TEXT NOT NULL,
  pool        TEXT NOT NULL,
  pool_path   TEXT NOT NULL,
  created_at  INTEGER NOT NULL
);
CREATE TABLE images (
  digest      TEXT PRIMARY KEY,           -- sha256 hex of the image bytes
  kind        TEXT NOT NULL CHECK (kind IN ('app', 'os')),
  name        TEXT NOT NULL,
  version     TEXT NOT NULL,
  size_bytes  INTEGER NOT NULL,
  path        TEXT NOT NULL,              -- directory under the state dir
  meta        TEXT NOT NULL,              -- JSON: manifest (app) or os-release + boot (os)
  created_at  INTEGER NOT NULL
);
CREATE INDEX images_by_name ON images(name, version);
CREATE TABLE host_images (
  host        TEXT NOT NULL REFERENCES hosts(name),
  digest      TEXT NOT NULL REFERENCES images(digest),
  volume      TEXT NOT NULL,              -- volume path on the host
  uploaded_at INTEGER NOT NULL,
  PRIMARY KEY (host, digest)
);
CREATE TABLE templates (
  name        TEXT NOT NULL,
  version     INTEGER NOT NULL,
  os_digest   TEXT NOT NULL REFERENCES images(digest),
  app_digest  TEXT NOT NULL REFERENCES images(digest),
  memory_mib  INTEGER NOT NULL,
  cpus        INTEGER NOT NULL,
  data_bytes  INTEGER NOT NULL,
  created_at  INTEGER NOT NULL,
  PRIMARY KEY (name, version)
);
CREATE TABLE vms (
  name        TEXT PRIMARY KEY,
  host        TEXT NOT NULL REFERENCES hosts(name),
  template    TEXT NOT NULL,
  version     INTEGER NOT NULL,           -- template version the VM runs
  state       TEXT NOT NULL,
  os_volume   TEXT NOT NULL,              -- the VM's current OS overlay
  data_volume TEXT NOT NULL,
  last_error  TEXT NOT NULL DEFAULT '',
  created_at  INTEGER NOT NULL,
  FOREIGN KEY (template, version) REFERENCES templates(name, version)
);
CREATE TABLE rollouts (
  id          INTEGER PRIMARY KEY,
  template    TEXT NOT NULL,
  to_version  INTEGER NOT NULL,
  state       TEXT NOT NULL,
  policy      TEXT NOT NULL,              -- JSON
  error       TEXT NOT NULL DEFAULT '',
  created_at  INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL
);
CREATE TABLE rollout_vms (
  rollout_id  INTEGER NOT NULL REFERENCES rollouts(id),
  position    INTEGER NOT NULL,
  vm          TEXT NOT NULL,
  state       TEXT NOT NULL,
  from_version INTEGER NOT NULL,
  to_version  INTEGER NOT NULL,
  downtime_ms INTEGER,
  error       TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (rollout_id, vm)
);
CREATE TABLE swap_journal (
  seq         INTEGER PRIMARY KEY,
  vm          TEXT NOT NULL,
  rollout_id  INTEGER,
  step        TEXT NOT NULL,
  phase       TEXT NOT NULL CHECK (phase IN ('intent', 'done')),
  detail      TEXT NOT NULL DEFAULT '{}', -- JSON
  at          INTEGER NOT NULL
);
CREATE INDEX swap_journal_by_vm ON swap_journal(vm, seq);
)sql",
  };
  return kMigrations;
}

}  // namespace vdswap
