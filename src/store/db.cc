#include "store/db.h"

#include <sqlite3.h>

#include "core/log.h"
#include "store/schema.h"

namespace vdswap {

namespace {

// Clients see what went wrong in their terms; SQLite's own words (table and column names,
// SQL) go to the daemon log only. Callers add the object ("vm 'web-1' exists").
Status SqliteError(sqlite3* db, int rc, std::string_view what) {
  const std::string raw = sqlite3_errmsg(db);
  VLOG(kWarning) << "sqlite " << what << ": " << raw << " (code " << rc << ")";
  if ((rc & 0xff) == SQLITE_CONSTRAINT &&
      (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY)) {
    return AlreadyExists("a record with that name exists already");
  }
  // A RESTRICT action fails as a trigger constraint with the foreign key message.
  if (rc == SQLITE_CONSTRAINT_FOREIGNKEY ||
      (rc == SQLITE_CONSTRAINT_TRIGGER && raw.find("FOREIGN KEY") != std::string::npos)) {
    return FailedPrecondition("the record is in use, or refers to one that does not exist");
  }
  switch (rc & 0xff) {
    case SQLITE_FULL:
      return Unavailable("the state database is out of disk space");
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return Unavailable("the state database is busy; try again");
    case SQLITE_READONLY:
      return Internal("the state database is read-only (see the vdswapd log)");
    case SQLITE_IOERR:
      return Internal("the state database cannot be read or written (see the vdswapd log)");
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return Internal("the state database is damaged (see the vdswapd log)");
    default:
      return Internal("state database error (see the vdswapd log)");
  }
}

Status Bind(sqlite3* db, sqlite3_stmt* stmt, const std::vector<DbValue>& params) {
  for (size_t i = 0; i < params.size(); ++i) {
    int idx = static_cast<int>(i + 1);
    const DbValue& v = params[i];
    int rc;
    if (std::holds_alternative<std::nullptr_t>(v)) {
      rc = sqlite3_bind_null(stmt, idx);
    } else if (auto* n = std::get_if<int64_t>(&v)) {
      rc = sqlite3_bind_int64(stmt, idx, *n);
    } else if (auto* d = std::get_if<double>(&v)) {
      rc = sqlite3_bind_double(stmt, idx, *d);
    } else {
      const auto& s = std::get<std::string>(v);
      rc = sqlite3_bind_text(stmt, idx, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
    }
    if (rc != SQLITE_OK) return SqliteError(db, rc, "bind");
  }
  return Status::Ok();
}

// Resets a cached statement and clears its bindings when it goes out of scope, so the
// next use starts fresh whichever way this one ended.
class StmtUse {
 public:
  explicit StmtUse(sqlite3_stmt* stmt) : stmt_(stmt) {}
  ~StmtUse() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  StmtUse(const StmtUse&) = delete;
  StmtUse& operator=(const StmtUse&) = delete;
  sqlite3_stmt* get() const { return stmt_; }

 private:
  sqlite3_stmt* stmt_;
};

// More distinct statements than the code has means SQL is being built from data: the
// cache is dropped rather than grown without bound.
constexpr size_t kMaxCachedStatements = 512;

}  // namespace

int64_t DbRow::Int(size_t i) const {
  const DbValue& v = values_.at(i);
  if (auto* n = std::get_if<int64_t>(&v)) return *n;
  if (auto* d = std::get_if<double>(&v)) return static_cast<int64_t>(*d);
  return 0;
}

double DbRow::Real(size_t i) const {
  const DbValue& v = values_.at(i);
  if (auto* d = std::get_if<double>(&v)) return *d;
  if (auto* n = std::get_if<int64_t>(&v)) return static_cast<double>(*n);
  return 0;
}

std::string DbRow::Text(size_t i) const {
  const DbValue& v = values_.at(i);
  if (auto* s = std::get_if<std::string>(&v)) return *s;
  if (auto* n = std::get_if<int64_t>(&v)) return std::to_string(*n);
  return "";
}

Result<std::unique_ptr<Db>> Db::Open(const std::string& path) {
  sqlite3* raw = nullptr;
  int rc =
      sqlite3_open_v2(path.c_str(), &raw,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr);
  std::unique_ptr<Db> db(new Db(raw));
  if (rc != SQLITE_OK) {
    return Internal("cannot open database '" + path + "': " + sqlite3_errstr(rc));
  }
  sqlite3_busy_timeout(raw, 5000);
  RETURN_IF_ERROR(
      db->ExecScript("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;"));
  RETURN_IF_ERROR(db->Migrate().WithContext("database '" + path + "'"));
  return db;
}

Db::~Db() {
  for (auto& [sql, stmt] : statements_) sqlite3_finalize(stmt);
  sqlite3_close_v2(db_);
}

Result<sqlite3_stmt*> Db::Statement(std::string_view sql, const std::vector<DbValue>& params) {
  auto it = statements_.find(sql);
  if (it == statements_.end()) {
    if (statements_.size() >= kMaxCachedStatements) {
      for (auto& [text, stmt] : statements_) sqlite3_finalize(stmt);
      statements_.clear();
    }
    sqlite3_stmt* raw = nullptr;
    int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                                SQLITE_PREPARE_PERSISTENT, &raw, nullptr);
    if (rc != SQLITE_OK) {
      sqlite3_finalize(raw);
      return SqliteError(db_, rc, "prepare");
    }
    it = statements_.emplace(std::string(sql), raw).first;
  }
  Status bound = Bind(db_, it->second, params);
  if (!bound.ok()) {
    sqlite3_clear_bindings(it->second);
    return bound;
  }
  return it->second;
}

Status Db::ExecScript(const std::string& sql) {
  std::lock_guard lock(mu_);
  char* err = nullptr;
  int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    std::string msg = err ? err : sqlite3_errstr(rc);
    sqlite3_free(err);
    return Internal("sql: " + msg);
  }
  return Status::Ok();
}

Status Db::Exec(std::string_view sql, const std::vector<DbValue>& params) {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(sqlite3_stmt * raw, Statement(sql, params));
  StmtUse stmt(raw);
  int rc;
  while ((rc = sqlite3_step(stmt.get())) == SQLITE_ROW) {
  }
  if (rc != SQLITE_DONE) return SqliteError(db_, sqlite3_extended_errcode(db_), "exec");
  return Status::Ok();
}

Result<std::vector<DbRow>> Db::Query(std::string_view sql, const std::vector<DbValue>& params) {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(sqlite3_stmt * raw, Statement(sql, params));
  StmtUse stmt(raw);
  std::vector<DbRow> rows;
  int rc;
  while ((rc = sqlite3_step(stmt.get())) == SQLITE_ROW) {
    int n = sqlite3_column_count(stmt.get());
    std::vector<DbValue> values;
    values.reserve(static_cast<size_t>(n));
    for (int c = 0; c < n; ++c) {
      switch (sqlite3_column_type(stmt.get(), c)) {
        case SQLITE_INTEGER:
          values.emplace_back(static_cast<int64_t>(sqlite3_column_int64(stmt.get(), c)));
          break;
        case SQLITE_FLOAT:
          values.emplace_back(sqlite3_column_double(stmt.get(), c));
          break;
        case SQLITE_NULL:
          values.emplace_back(nullptr);
          break;
        default: {
          const auto* text = sqlite3_column_text(stmt.get(), c);
          int len = sqlite3_column_bytes(stmt.get(), c);
          values.emplace_back(
              std::string(reinterpret_cast<const char*>(text), static_cast<size_t>(len)));
        }
      }
    }
    rows.emplace_back(std::move(values));
  }
  if (rc != SQLITE_DONE) return SqliteError(db_, sqlite3_extended_errcode(db_), "query");
  return rows;
}

int64_t Db::Changes() const { return sqlite3_changes64(db_); }
int64_t Db::LastInsertId() const { return sqlite3_last_insert_rowid(db_); }

Result<int64_t> Db::SchemaVersion() {
  ASSIGN_OR_RETURN(auto rows, Query("PRAGMA user_version"));
  return rows.at(0).Int(0);
}

Status Db::Migrate() {
  std::lock_guard lock(mu_);
  // A migration may rebuild a table to change its constraints (SQLite cannot ALTER them);
  // dropping the old table must not fire ON DELETE actions or checks, so foreign keys are
  // off while migrating (they can only be switched outside a transaction) and checked as
  // a whole before the commit.
  RETURN_IF_ERROR(ExecScript("PRAGMA foreign_keys=OFF"));
  Status s = MigrateLocked();
  Status on = ExecScript("PRAGMA foreign_keys=ON");
  RETURN_IF_ERROR(s);
  return on;
}

Status Db::MigrateLocked() {
  const auto& migrations = SchemaMigrations();
  Transaction txn(*this);
  RETURN_IF_ERROR(txn.begin_status());
  ASSIGN_OR_RETURN(int64_t version, SchemaVersion());
  if (version > static_cast<int64_t>(migrations.size())) {
    return FailedPrecondition("schema version " + std::to_string(version) +
                              " is newer than this vdswap knows (" +
                              std::to_string(migrations.size()) + ")");
  }
  for (size_t v = static_cast<size_t>(version); v < migrations.size(); ++v) {
    RETURN_IF_ERROR(ExecScript(migrations[v]).WithContext("migration " + std::to_string(v + 1)));
    RETURN_IF_ERROR(ExecScript("PRAGMA user_version=" + std::to_string(v + 1)));
  }
  ASSIGN_OR_RETURN(auto broken, Query("PRAGMA foreign_key_check"));
  if (!broken.empty()) {
    return Internal("migration left a row of '" + broken[0].Text(0) +
                    "' with a dangling reference to '" + broken[0].Text(2) + "'");
  }
  return txn.Commit();
}

Transaction::Transaction(Db& db) : db_(db), lock_(db.mu_) {
  // Only this thread can be inside a transaction while it holds the lock.
  nested_ = sqlite3_get_autocommit(db_.db_) == 0;
  if (nested_) return;
  begin_ = db_.ExecScript("BEGIN IMMEDIATE");
  done_ = !begin_.ok();
}

Transaction::~Transaction() {
  if (!done_ && !nested_) db_.ExecScript("ROLLBACK").IgnoreError();
}

Status Transaction::Commit() {
  if (nested_) return Status::Ok();
  if (done_) return FailedPrecondition("transaction is not open");
  Status s = db_.ExecScript("COMMIT");
  if (s.ok()) done_ = true;
  return s;
}

}  // namespace vdswap
