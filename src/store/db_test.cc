#include "store/db.h"

#include <gtest/gtest.h>

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
