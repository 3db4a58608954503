#include "tests/integration/journal_rows.h"

#include <sqlite3.h>

#include <filesystem>
#include <memory>

namespace vdswap::testing {

Result<std::vector<JournalRow>> ReadSwapJournal(const std::string& state_dir,
                                                const std::string& vm) {
  const std::string path = state_dir + "/vdswap.db";
  if (!std::filesystem::exists(path)) {
    return NotFound("database '" + path + "' does not exist");
  }
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READONLY, nullptr);
  std::unique_ptr<sqlite3, decltype(&sqlite3_close)> db(raw, &sqlite3_close);
  if (rc != SQLITE_OK) {
    return Internal("cannot open '" + path + "': " + (raw ? sqlite3_errmsg(raw) : "no memory"));
  }
  sqlite3_busy_timeout(db.get(), 5000);
  sqlite3_stmt* stmt_raw = nullptr;
  rc = sqlite3_prepare_v2(db.get(),
                          "SELECT seq, vm, coalesce(rollout_id, 0), step, phase FROM swap_journal "
                          "WHERE vm = ?1 ORDER BY seq",
                          -1, &stmt_raw, nullptr);
  std::unique_ptr<sqlite3_stmt, decltype(&sqlite3_finalize)> stmt(stmt_raw, &sqlite3_finalize);
  if (rc != SQLITE_OK) {
    return Internal(std::string("swap journal: ") + sqlite3_errmsg(db.get()));
  }
  sqlite3_bind_text(stmt.get(), 1, vm.c_str(), -1, SQLITE_TRANSIENT);
  std::vector<JournalRow> rows;
  auto text = [&](int col) {
    const unsigned char* t = sqlite3_column_text(stmt.get(), col);
    return t ? std::string(reinterpret_cast<const char*>(t)) : std::string();
  };
  while ((rc = sqlite3_step(stmt.get())) == SQLITE_ROW) {
    rows.push_back({sqlite3_column_int64(stmt.get(), 0), text(1),
                    sqlite3_column_int64(stmt.get(), 2), text(3), text(4)});
  }
  if (rc != SQLITE_DONE) {
    return Internal(std::string("swap journal: ") + sqlite3_errmsg(db.get()));
  }
  return rows;
}

}  // namespace vdswap::testing
