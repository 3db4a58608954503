#include "store/db.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include "core/files.h"
#include "store/schema.h"

namespace vdswap {
namespace {

std::unique_ptr<Db> OpenMemory() {
  auto db = Db::Open(":memory:");
  EXPECT_TRUE(db.ok()) << db.status().ToString();
  return std::move(db).value();
}

TEST(DbTest, OpenAppliesAllMigrations) {
  auto db = OpenMemory();
  EXPECT_EQ(*db->SchemaVersion(), static_cast<int64_t>(SchemaMigrations().size()));
  auto rows = db->Query("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name");
  ASSERT_TRUE(rows.ok());
  std::vector<std::string> tables;
  for (const auto& r : *rows) tables.push_back(r.Text(0));
  for (const char* t : {"host_images", "hosts", "images", "rollout_vms", "rollouts", "swap_journal",
                        "templates", "vms"}) {
    EXPECT_NE(std::find(tables.begin(), tables.end(), t), tables.end()) << t;
  }
}

// A database at schema 1 with one of everything, written without Db (as a release with
// only migration 1 left it).
void WriteSchema1Database(const std::string& path) {
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &raw), SQLITE_OK);
  std::string sql = SchemaMigrations().at(0) + R"sql(
INSERT INTO hosts VALUES ('h1', 'fake:///', 'p', '/p', 1);
INSERT INTO images VALUES ('d1', 'os', 'os', '1', 1, '/i/d1', '{}', 1);
INSERT INTO images VALUES ('d2', 'app', 'web', '1', 1, '/i/d2', '{}', 1);
INSERT INTO host_images VALUES ('h1', 'd2', '/p/app', 1);
INSERT INTO templates VALUES ('web', 1, 'd1', 'd2', 256, 1, 1024, 1);
INSERT INTO vms VALUES ('vm1', 'h1', 'web', 1, 'running', 'o', 'd', '', 1);
INSERT INTO rollouts VALUES (1, 'web', 1, 'succeeded', '{}', '', 1, 1);
INSERT INTO rollout_vms VALUES (1, 0, 'vm1', 'done', 1, 1, 5, '');
INSERT INTO swap_journal (vm, rollout_id, step, phase, detail, at)
  VALUES ('vm1', 1, 'done', 'done', '{}', 1);
PRAGMA user_version = 1;
)sql";
  char* err = nullptr;
  EXPECT_EQ(sqlite3_exec(raw, sql.c_str(), nullptr, nullptr, &err), SQLITE_OK) << err;
  sqlite3_free(err);
  sqlite3_close(raw);
}

int64_t Count(Db& db, const std::string& table) {
  return (*db.Query("SELECT count(*) FROM " + table))[0].Int(0);
}

TEST(DbTest, Migration2KeepsDataAndAddsCascadeAndRestrictKeys) {
  auto dir = TempDir::Create("/tmp", "db-migrate");
  ASSERT_TRUE(dir.ok());
  const std::string path = dir->path() + "/v1.db";
  WriteSchema1Database(path);
  auto opened = Db::Open(path);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  Db& db = **opened;
  EXPECT_EQ(*db.SchemaVersion(), static_cast<int64_t>(SchemaMigrations().size()));
  for (const char* t :
       {"hosts", "host_images", "templates", "vms", "rollouts", "rollout_vms", "swap_journal"}) {
    EXPECT_EQ(Count(db, t), 1) << t;
  }
  EXPECT_EQ(Count(db, "images"), 2);
  // RESTRICT: an image a template uses, a host with VMs, a template version with VMs.
  EXPECT_EQ(db.Exec("DELETE FROM images WHERE digest = 'd1'").code(), Code::kFailedPrecondition);
  EXPECT_EQ(db.Exec("DELETE FROM hosts WHERE name = 'h1'").code(), Code::kFailedPrecondition);
  EXPECT_EQ(db.Exec("DELETE FROM templates").code(), Code::kFailedPrecondition);
  // CASCADE: a VM takes its rollout and journal rows along.
  ASSERT_TRUE(db.Exec("DELETE FROM vms WHERE name = 'vm1'").ok());
  EXPECT_EQ(Count(db, "rollout_vms"), 0);
  EXPECT_EQ(Count(db, "swap_journal"), 0);
  EXPECT_EQ(Count(db, "rollouts"), 1);
  // and a host its host_images rows.
  ASSERT_TRUE(db.Exec("DELETE FROM hosts WHERE name = 'h1'").ok());
  EXPECT_EQ(Count(db, "host_images"), 0);
  EXPECT_EQ(db.Query("PRAGMA foreign_keys").value()[0].Int(0), 1);
}

TEST(DbTest, Migration3GivesOldTemplatesNoNetworksAndVmsUniqueMacs) {
  auto dir = TempDir::Create("/tmp", "db-migrate");
  ASSERT_TRUE(dir.ok());
  const std::string path = dir->path() + "/v1.db";
  WriteSchema1Database(path);
  auto opened = Db::Open(path);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  Db& db = **opened;
  // Versions made before networks existed had no NIC; they keep having none.
  EXPECT_EQ(db.Query("SELECT networks FROM templates").value()[0].Text(0), "[]");
  ASSERT_TRUE(
      db.Exec("INSERT INTO vm_nics VALUES ('vm1', 0, 'default', '52:54:00:00:00:01')").ok());
  EXPECT_EQ(db.Exec("INSERT INTO vm_nics VALUES ('vm1', 1, 'b', '52:54:00:00:00:01')").code(),
            Code::kAlreadyExists);
  ASSERT_TRUE(db.Exec("DELETE FROM vms WHERE name = 'vm1'").ok());
  EXPECT_EQ(Count(db, "vm_nics"), 0);  // a VM's NICs go with it
}

TEST(DbTest, MigratingTwiceIsANoOp) {
  auto db = OpenMemory();
  ASSERT_TRUE(db->Exec("INSERT INTO hosts VALUES ('h', 'qemu:///system', 'p', '/p', 0)").ok());
  ASSERT_TRUE(db->Migrate().ok());
  ASSERT_TRUE(db->Migrate().ok());
  EXPECT_EQ(*db->SchemaVersion(), static_cast<int64_t>(SchemaMigrations().size()));
  EXPECT_EQ(db->Query("SELECT count(*) FROM hosts")->at(0).Int(0), 1);
}

TEST(DbTest, ReopeningAFileKeepsDataAndWal) {
  auto dir = TempDir::Create("/tmp", "dbtest");
  ASSERT_TRUE(dir.ok());
  std::string path = dir->path() + "/x.db";
  {
    auto db = Db::Open(path);
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE((*db)->Exec("INSERT INTO hosts VALUES ('h', 'u', 'p', '/p', 0)").ok());
    EXPECT_EQ((*db)->Query("PRAGMA journal_mode")->at(0).Text(0), "wal");
    EXPECT_EQ((*db)->Query("PRAGMA synchronous")->at(0).Int(0), 2);  // FULL
  }
  auto db = Db::Open(path);
  ASSERT_TRUE(db.ok());
  EXPECT_EQ((*db)->Query("SELECT uri FROM hosts")->at(0).Text(0), "u");
}

TEST(DbTest, RefusesANewerSchema) {
  auto dir = TempDir::Create("/tmp", "dbtest");
  ASSERT_TRUE(dir.ok());
  std::string path = dir->path() + "/x.db";
  {
    auto db = Db::Open(path);
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE((*db)->Exec("PRAGMA user_version=999").ok());
  }
  auto db = Db::Open(path);
  ASSERT_FALSE(db.ok());
  EXPECT_EQ(db.status().code(), Code::kFailedPrecondition);
}

TEST(DbTest, BindsParametersOfEveryType) {
  auto db = OpenMemory();
  ASSERT_TRUE(db->Exec("CREATE TABLE t (a, b, c, d)").ok());
  ASSERT_TRUE(db->Exec("INSERT INTO t VALUES (?1, ?2, ?3, ?4)",
                       {int64_t{42}, 2.5, std::string("it's"), nullptr})
                  .ok());
  auto rows = db->Query("SELECT a, b, c, d FROM t");
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ(rows->at(0).Int(0), 42);
  EXPECT_DOUBLE_EQ(rows->at(0).Real(1), 2.5);
  EXPECT_EQ(rows->at(0).Text(2), "it's");
  EXPECT_TRUE(rows->at(0).IsNull(3));
}

TEST(DbTest, DuplicateKeyIsAlreadyExists) {
  auto db = OpenMemory();
  ASSERT_TRUE(db->Exec("INSERT INTO hosts VALUES ('h', 'u', 'p', '/p', 0)").ok());
  Status s = db->Exec("INSERT INTO hosts VALUES ('h', 'u', 'p', '/p', 0)");
  EXPECT_EQ(s.code(), Code::kAlreadyExists);
}

TEST(DbTest, SyntaxErrorIsInternal) {
  auto db = OpenMemory();
  EXPECT_EQ(db->Exec("SELEKT 1").code(), Code::kInternal);
}

// What reaches clients names no table, column or SQL; the raw message is only logged.
TEST(DbTest, ErrorsSayWhatWentWrongWithoutSqliteWords) {
  auto db = OpenMemory();
  ASSERT_TRUE(db->Exec("INSERT INTO hosts VALUES ('h', 'u', 'p', '/p', 0)").ok());
  for (const Status& s : {db->Exec("INSERT INTO hosts VALUES ('h', 'u', 'p', '/p', 0)"),
                          db->Exec("SELEKT 1"), db->Exec("SELECT nope FROM hosts")}) {
    ASSERT_FALSE(s.ok());
    for (const char* sqlite_word : {"constraint", "hosts", "syntax", "nope", "SQL", "sqlite"}) {
      EXPECT_EQ(s.message().find(sqlite_word), std::string::npos) << s.message();
    }
  }
}

TEST(TransactionTest, UncommittedTransactionLeavesNothing) {
  auto db = OpenMemory();
  {
    Transaction txn(*db);
    ASSERT_TRUE(txn.begin_status().ok());
    ASSERT_TRUE(db->Exec("INSERT INTO hosts VALUES ('a', 'u', 'p', '/p', 0)").ok());
    // A later statement fails: the caller returns without committing.
    ASSERT_FALSE(db->Exec("INSERT INTO hosts VALUES ('a', 'u', 'p', '/p', 0)").ok());
  }
  EXPECT_EQ(db->Query("SELECT count(*) FROM hosts")->at(0).Int(0), 0);
}

TEST(TransactionTest, CommittedTransactionPersists) {
  auto db = OpenMemory();
  {
    Transaction txn(*db);
    ASSERT_TRUE(db->Exec("INSERT INTO hosts VALUES ('a', 'u', 'p', '/p', 0)").ok());
    ASSERT_TRUE(txn.Commit().ok());
    EXPECT_FALSE(txn.Commit().ok());
  }
  EXPECT_EQ(db->Query("SELECT count(*) FROM hosts")->at(0).Int(0), 1);
}

}  // namespace
}  // namespace vdswap

namespace vdswap {
namespace {

TEST(DbTest, StatementsAreReusedWithFreshBindingsAfterErrors) {
  auto db = OpenMemory();
  ASSERT_TRUE(db->Exec("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)").ok());
  for (int64_t k = 0; k < 4; ++k) {
    ASSERT_TRUE(db->Exec("INSERT INTO t VALUES (?1, ?2)", {k, "v" + std::to_string(k)}).ok());
  }
  EXPECT_EQ(db->Exec("INSERT INTO t VALUES (?1, ?2)", {int64_t{1}, "again"}).code(),
            Code::kAlreadyExists);
  ASSERT_TRUE(db->Exec("INSERT INTO t VALUES (?1, ?2)", {int64_t{9}, "v9"}).ok());
  EXPECT_EQ(db->Query("SELECT v FROM t WHERE k = ?1", {int64_t{2}})->at(0).Text(0), "v2");
  EXPECT_EQ(db->Query("SELECT v FROM t WHERE k = ?1", {int64_t{9}})->at(0).Text(0), "v9");
  // A statement run with fewer parameters than at its last use sees the rest unbound.
  EXPECT_EQ(db->Query("SELECT ?1 IS NULL", {int64_t{5}})->at(0).Int(0), 0);
  EXPECT_EQ(db->Query("SELECT ?1 IS NULL")->at(0).Int(0), 1);
  EXPECT_EQ(db->Query("SELECT count(*) FROM t")->at(0).Int(0), 5);
  EXPECT_EQ(db->Query("SELECT nonsense FROM t").status().code(), Code::kInternal);
}

TEST(DbTest, ANestedTransactionJoinsTheOuterOne) {
  auto db = OpenMemory();
  ASSERT_TRUE(db->Exec("CREATE TABLE t (k INTEGER PRIMARY KEY)").ok());
  {
    Transaction outer(*db);
    ASSERT_TRUE(outer.begin_status().ok());
    {
      Transaction inner(*db);
      ASSERT_TRUE(inner.begin_status().ok());
      ASSERT_TRUE(db->Exec("INSERT INTO t VALUES (1)").ok());
      ASSERT_TRUE(inner.Commit().ok());
    }
    // The outer one is not committed: everything goes.
  }
  EXPECT_EQ(db->Query("SELECT count(*) FROM t")->at(0).Int(0), 0);
  {
    Transaction outer(*db);
    {
      Transaction inner(*db);
      ASSERT_TRUE(db->Exec("INSERT INTO t VALUES (2)").ok());
    }  // the inner one's end rolls nothing back
    ASSERT_TRUE(outer.Commit().ok());
  }
  EXPECT_EQ(db->Query("SELECT k FROM t")->at(0).Int(0), 2);
}

TEST(DbTest, Migration5KeepsEachVmsLastThreeFinishedSwapsAndAnyUnfinishedOne) {
  auto dir = TempDir::Create("/tmp", "db-migrate");
  ASSERT_TRUE(dir.ok());
  const std::string path = dir->path() + "/v1.db";
  WriteSchema1Database(path);  // vm1: one terminal row (seq 1)
  {
    sqlite3* raw = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &raw), SQLITE_OK);
    const char* rows = R"sql(
INSERT INTO swap_journal (seq, vm, rollout_id, step, phase, detail, at) VALUES
  (2, 'vm1', 1, 'checked', 'intent', '{}', 2), (3, 'vm1', 1, 'done', 'done', '{}', 3),
  (4, 'vm1', 1, 'checked', 'intent', '{}', 4), (5, 'vm1', 1, 'rolled_back', 'done', '{}', 5),
  (6, 'vm1', 1, 'checked', 'intent', '{}', 6), (7, 'vm1', 1, 'done', 'done', '{}', 7),
  (8, 'vm1', 1, 'checked', 'intent', '{}', 8), (9, 'vm1', 1, 'failed', 'done', '{}', 9),
  (10, 'vm1', 1, 'checked', 'intent', '{}', 10), (11, 'vm1', 1, 'stopped', 'intent', '{}', 11);
)sql";
    ASSERT_EQ(sqlite3_exec(raw, rows, nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(raw);
  }
  auto opened = Db::Open(path);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  auto kept = (*opened)->Query("SELECT seq FROM swap_journal ORDER BY seq");
  ASSERT_TRUE(kept.ok());
  std::vector<int64_t> seqs;
  for (const auto& r : *kept) seqs.push_back(r.Int(0));
  EXPECT_EQ(seqs, (std::vector<int64_t>{4, 5, 6, 7, 8, 9, 10, 11}));
}

}  // namespace
}  // namespace vdswap
