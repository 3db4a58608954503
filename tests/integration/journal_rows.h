#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"

namespace vdswap::testing {

// One row of a daemon's swap journal (table swap_journal), as a test reads it from the
// database file; the daemon's own reader and writer is fleet/swap_journal.h.
struct JournalRow {
  int64_t seq = 0;
  std::string vm;
  int64_t rollout_id = 0;
  std::string step;
  std::string phase;
  std::string Name() const { return step + "/" + phase; }  // "started/intent"
};

// The journal rows of `vm` in STATE_DIR/vdswap.db, oldest first, read through a read-only
// SQLite connection so a running daemon is not disturbed. kNotFound when there is no
// database; kInternal on SQLite errors.
Result<std::vector<JournalRow>> ReadSwapJournal(const std::string& state_dir,
                                                const std::string& vm);

}  // namespace vdswap::testing
