#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/json.h"
#include "core/status.h"
#include "fleet/swap_journal.h"
#include "fleet/swap_order.h"
#include "hypervisor/hypervisor.h"
#include "protocol/agent_protocol.h"

namespace vdswap {

// How a swap moves a VM between two versions, decided once when it starts. Each kind has
// its own steps (SwapStep lists them), its own way back and its own rule for resuming.
enum class SwapKind {
  kAppBreakBeforeMake,  // stop the app, unplug the old app disk, plug the new, start
  kAppMakeBeforeBreak,  // the new app disk beside the old, switch, then unplug the old
  kOs,                  // shut down, boot a fresh overlay of the new OS with the same data
};
// "app break-before-make", "app make-before-break", "os".
std::string_view SwapKindName(SwapKind k);
// The kind of a swap that changes the OS (`os_swap`) or only the app, in `order`.
SwapKind KindOf(bool os_swap, SwapOrder order);

// A swap's saved state: what it moves and where its disks are, written as the detail of
// every journal entry so that a restarted daemon continues from any of them.
struct SavedSwap {
  std::string template_name;
  int64_t from_version = 0, to_version = 0;
  SwapKind kind = SwapKind::kAppMakeBeforeBreak;
  std::string old_app, new_app;  // app disk paths on the host ("" when the VM had none)
  // The app slots: the old disk's serial, and the new one's (the other slot when making
  // before breaking, the same one otherwise).
  std::string old_serial = kAppSerial, new_serial = kAppSerial;
  std::string old_os, new_os;  // OS overlay volume names (equal unless kOs)

  // The journal detail: {"template", "from", "to", "os_swap", "order", "old_app", ...}.
  Json Detail() const;
  // Inverse of Detail. Entries written before make-before-break existed have no "order":
  // break-before-make. kInvalidArgument when the detail names no template or versions.
  static Result<SavedSwap> FromDetail(const Json& detail);
};

// Which way an interrupted swap continues.
enum class ResumeDirection { kForward, kBack };

// The resume decision, from the swap's saved state, its newest durable journal entry and
// the VM's disks as the hypervisor reports them now (the live state is the truth; the
// journal only says how far the swap got). Forward only when the new version's disk is
// certainly in place: the new app disk in the new slot (break-before-make), the VM on the
// new OS overlay (OS), or, make-before-break, the new app disk in its slot after the new
// app was seen healthy (switched/done or later); back otherwise, and always back from a
// rollback in progress.
ResumeDirection DecideResume(const SavedSwap& saved, const JournalEntry& last,
                             const VmLiveState& live);

}  // namespace vdswap
