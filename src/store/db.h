#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/status.h"

struct sqlite3;
struct sqlite3_stmt;

namespace vdswap {

// A SQLite value as bound to or read from a statement.
using DbValue = std::variant<std::nullptr_t, int64_t, double, std::string>;

// One result row. Accessors REQUIRE the column to exist; a NULL reads as 0 / "".
class DbRow {
 public:
  explicit DbRow(std::vector<DbValue> values) : values_(std::move(values)) {}
  int64_t Int(size_t i) const;
  double Real(size_t i) const;
  std::string Text(size_t i) const;
  bool IsNull(size_t i) const { return std::holds_alternative<std::nullptr_t>(values_.at(i)); }
  size_t size() const { return values_.size(); }

 private:
  std::vector<DbValue> values_;
};

// One SQLite connection in WAL mode with synchronous=FULL and foreign keys on (enforced;
// ON DELETE CASCADE / RESTRICT is how rows of different owners stay consistent).
// Thread-safe: every call holds the connection's lock, and a Transaction holds it for
// its whole life, so statements of other threads never interleave with it. Statements
// are prepared once per SQL text and reused (the owners' SQL is constant text with
// positional parameters, so the cache holds one entry per statement in the code).
class Db {
 public:
  // Opens (creating) the database at `path` (":memory:" for tests) and applies the
  // schema migrations that are not applied yet. kInternal when it cannot.
  static Result<std::unique_ptr<Db>> Open(const std::string& path);
  ~Db();
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  // Runs one statement with positional parameters (?1, ?2 ...). A UNIQUE or PRIMARY KEY
  // violation is kAlreadyExists; a FOREIGN KEY violation (a row still referenced by a
  // RESTRICT key, or a reference to a missing row) kFailedPrecondition; other errors
  // kInternal. Owners map these to messages naming their object.
  Status Exec(std::string_view sql, const std::vector<DbValue>& params = {});
  // Runs a query and returns every row.
  Result<std::vector<DbRow>> Query(std::string_view sql, const std::vector<DbValue>& params = {});
  // Number of rows the last Exec changed, and its rowid (for INTEGER PRIMARY KEY inserts).
  int64_t Changes() const;
  int64_t LastInsertId() const;

  // The schema version the database is at (PRAGMA user_version).
  Result<int64_t> SchemaVersion();
  // Applies pending migrations; applying them again is a no-op.
  Status Migrate();

 private:
  friend class Transaction;
  explicit Db(sqlite3* db) : db_(db) {}
  Status ExecScript(const std::string& sql);
  Status MigrateLocked();
  // The prepared statement for `sql` with `params` bound. REQUIRES: mu_ held; the
  // caller resets it after use (StmtUse).
  Result<sqlite3_stmt*> Statement(std::string_view sql, const std::vector<DbValue>& params);

  sqlite3* db_;
  std::recursive_mutex mu_;
  std::map<std::string, sqlite3_stmt*, std::less<>> statements_;
};

// BEGIN IMMEDIATE on construction; ROLLBACK on destruction unless Commit() succeeded.
// Inside another Transaction of the same thread it joins that one: its Commit and
// rollback do nothing, and the outer one commits or rolls back everything.
class Transaction {
 public:
  explicit Transaction(Db& db);
  ~Transaction();
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  // Status of BEGIN; check before using the transaction.
  const Status& begin_status() const { return begin_; }
  Status Commit();

 private:
  Db& db_;
  std::unique_lock<std::recursive_mutex> lock_;
  Status begin_;
  bool done_ = false;
  bool nested_ = false;
};

}  // namespace vdswap
