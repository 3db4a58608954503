#include "store/schema.h"

namespace vdswap {

// One data table of SQL texts, growing by one entry per schema change: exempt from the
// function-size rule.
const std::vector<std::string>& SchemaMigrations() {  // NOLINT(readability-function-size)
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
      // 2: rows of different owners are kept consistent by the database, so no module
      // runs SQL on another's table: removing a host or an image drops its host_images
      // rows, removing a VM its rollout_vms and swap_journal rows (CASCADE); an image a
      // template uses, a host with VMs and a template version with VMs cannot be removed
      // (RESTRICT). SQLite adds constraints only by rebuilding a table; Db::Migrate runs
      // this with foreign keys off and checks them all before it commits.
      R"sql(
CREATE TABLE host_images_v2 (
  host        TEXT NOT NULL REFERENCES hosts(name) ON DELETE CASCADE,
  digest      TEXT NOT NULL REFERENCES images(digest) ON DELETE CASCADE,
  volume      TEXT NOT NULL,
  uploaded_at INTEGER NOT NULL,
  PRIMARY KEY (host, digest)
);
INSERT INTO host_images_v2 SELECT host, digest, volume, uploaded_at FROM host_images
  WHERE host IN (SELECT name FROM hosts) AND digest IN (SELECT digest FROM images);
DROP TABLE host_images;
ALTER TABLE host_images_v2 RENAME TO host_images;

CREATE TABLE templates_v2 (
  name        TEXT NOT NULL,
  version     INTEGER NOT NULL,
  os_digest   TEXT NOT NULL REFERENCES images(digest) ON DELETE RESTRICT,
  app_digest  TEXT NOT NULL REFERENCES images(digest) ON DELETE RESTRICT,
  memory_mib  INTEGER NOT NULL,
  cpus        INTEGER NOT NULL,
  data_bytes  INTEGER NOT NULL,
  created_at  INTEGER NOT NULL,
  PRIMARY KEY (name, version)
);
INSERT INTO templates_v2 SELECT name, version, os_digest, app_digest, memory_mib, cpus,
  data_bytes, created_at FROM templates;
DROP TABLE templates;
ALTER TABLE templates_v2 RENAME TO templates;

CREATE TABLE vms_v2 (
  name        TEXT PRIMARY KEY,
  host        TEXT NOT NULL REFERENCES hosts(name) ON DELETE RESTRICT,
  template    TEXT NOT NULL,
  version     INTEGER NOT NULL,
  state       TEXT NOT NULL,
  os_volume   TEXT NOT NULL,
  data_volume TEXT NOT NULL,
  last_error  TEXT NOT NULL DEFAULT '',
  created_at  INTEGER NOT NULL,
  FOREIGN KEY (template, version) REFERENCES templates(name, version) ON DELETE RESTRICT
);
INSERT INTO vms_v2 SELECT name, host, template, version, state, os_volume, data_volume,
  last_error, created_at FROM vms;
DROP TABLE vms;
ALTER TABLE vms_v2 RENAME TO vms;
CREATE INDEX vms_by_host ON vms(host);

CREATE TABLE rollout_vms_v2 (
  rollout_id  INTEGER NOT NULL REFERENCES rollouts(id) ON DELETE CASCADE,
  position    INTEGER NOT NULL,
  vm          TEXT NOT NULL REFERENCES vms(name) ON DELETE CASCADE,
  state       TEXT NOT NULL,
  from_version INTEGER NOT NULL,
  to_version  INTEGER NOT NULL,
  downtime_ms INTEGER,
  error       TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (rollout_id, vm)
);
INSERT INTO rollout_vms_v2 SELECT rollout_id, position, vm, state, from_version, to_version,
  downtime_ms, error FROM rollout_vms WHERE vm IN (SELECT name FROM vms);
DROP TABLE rollout_vms;
ALTER TABLE rollout_vms_v2 RENAME TO rollout_vms;
CREATE INDEX rollout_vms_by_vm ON rollout_vms(vm);

CREATE TABLE swap_journal_v2 (
  seq         INTEGER PRIMARY KEY,
  vm          TEXT NOT NULL REFERENCES vms(name) ON DELETE CASCADE,
  rollout_id  INTEGER,
  step        TEXT NOT NULL,
  phase       TEXT NOT NULL CHECK (phase IN ('intent', 'done')),
  detail      TEXT NOT NULL DEFAULT '{}',
  at          INTEGER NOT NULL
);
INSERT INTO swap_journal_v2 SELECT seq, vm, rollout_id, step, phase, detail, at
  FROM swap_journal WHERE vm IN (SELECT name FROM vms);
DROP TABLE swap_journal;
ALTER TABLE swap_journal_v2 RENAME TO swap_journal;
CREATE INDEX swap_journal_by_vm ON swap_journal(vm, seq);
)sql",
      // 3: networks. A template lists the libvirt networks its VMs get a NIC on (versions
      // made before had none); a VM's NICs keep the MAC chosen at creation for its life,
      // so it keeps its DHCP lease across restarts and OS swaps. MACs are unique.
      R"sql(
ALTER TABLE templates ADD COLUMN networks TEXT NOT NULL DEFAULT '[]';  -- JSON array of names
CREATE TABLE vm_nics (
  vm          TEXT NOT NULL REFERENCES vms(name) ON DELETE CASCADE,
  idx         INTEGER NOT NULL,           -- order of the NICs in the domain
  network     TEXT NOT NULL,
  mac         TEXT NOT NULL UNIQUE,
  PRIMARY KEY (vm, idx)
);
)sql",
      // 4: rollout policies at work: each VM's host and start/end times, whether the
      // canaries were let go, and the failures a resume forgave (the budget counts the rest).
      R"sql(
ALTER TABLE rollout_vms ADD COLUMN host TEXT NOT NULL DEFAULT '';
ALTER TABLE rollout_vms ADD COLUMN started_at_ms INTEGER;
ALTER TABLE rollout_vms ADD COLUMN finished_at_ms INTEGER;
ALTER TABLE rollouts ADD COLUMN canaries_released INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rollouts ADD COLUMN failures_forgiven INTEGER NOT NULL DEFAULT 0;
CREATE INDEX rollout_vms_by_state ON rollout_vms(rollout_id, state);
CREATE INDEX rollouts_by_state ON rollouts(state);
)sql",
      // 5: scale. A rollout's VMs are read in order and a template's VMs by name without
      // a sort; the journal keeps each VM's last 3 finished swaps
      // (SwapJournal::kFinishedSwapsKept), so the rows of older swaps go once here.
      R"sql(
CREATE INDEX rollout_vms_by_position ON rollout_vms(rollout_id, position);
CREATE INDEX vms_by_template ON vms(template, name);
DELETE FROM swap_journal WHERE seq <= (SELECT t.seq FROM swap_journal t WHERE
  t.vm = swap_journal.vm AND t.phase = 'done' AND t.step IN ('done', 'rolled_back', 'failed')
  ORDER BY t.seq DESC LIMIT 1 OFFSET 3);
)sql",
      // 6: image volumes checked by content. What vdswapd uploaded (its SHA-256 and
      // size) under which volume name, what the last check of it found ('' while it
      // matched), and the copies found bad while VMs used them (kept, never deleted under
      // an overlay; JSON array of {digest, volume, detail, at}). Older rows name the
      // default volume ('') and get their digest read from the image when next checked.
      R"sql(
ALTER TABLE host_images ADD COLUMN volume_name TEXT NOT NULL DEFAULT '';
ALTER TABLE host_images ADD COLUMN disk_sha256 TEXT NOT NULL DEFAULT '';
ALTER TABLE host_images ADD COLUMN disk_bytes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE host_images ADD COLUMN mismatch TEXT NOT NULL DEFAULT '';
ALTER TABLE host_images ADD COLUMN bad_copies TEXT NOT NULL DEFAULT '[]';
)sql",
  };
  return kMigrations;
}

}  // namespace vdswap
