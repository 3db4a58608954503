#include "fleet/saved_swap.h"

#include "core/enum_names.h"

namespace vdswap {

namespace {
constexpr EnumNames<SwapKind, 3> kKinds = {{
    {SwapKind::kAppBreakBeforeMake, "app break-before-make"},
    {SwapKind::kAppMakeBeforeBreak, "app make-before-break"},
    {SwapKind::kOs, "os"},
}};

// True when `live` has `path` in app slot `serial`.
bool AppDiskIn(const VmLiveState& live, const std::string& serial, const std::string& path) {
  const DiskSpec* app = live.Disk(serial);
  return app != nullptr && !path.empty() && app->path == path;
}
}  // namespace

std::string_view SwapKindName(SwapKind k) { return NameOf(kKinds, k); }

SwapKind KindOf(bool os_swap, SwapOrder order) {
  if (os_swap) return SwapKind::kOs;
  return order == SwapOrder::kMakeBeforeBreak ? SwapKind::kAppMakeBeforeBreak
                                              : SwapKind::kAppBreakBeforeMake;
}

Json SavedSwap::Detail() const {
  // "os_swap" and "order" rather than the kind: what daemons before the kind wrote.
  const SwapOrder order = kind == SwapKind::kAppMakeBeforeBreak ? SwapOrder::kMakeBeforeBreak
                                                                : SwapOrder::kBreakBeforeMake;
  return {{"from", from_version},
          {"to", to_version},
          {"template", template_name},
          {"os_swap", kind == SwapKind::kOs},
          {"old_app", old_app},
          {"new_app", new_app},
          {"old_os", old_os},
          {"new_os", new_os},
          {"old_serial", old_serial},
          {"new_serial", new_serial},
          {"order", SwapOrderName(order)}};
}

Result<SavedSwap> SavedSwap::FromDetail(const Json& d) {
  if (!d.is_object() || !d.contains("template") || !d.contains("from") || !d.contains("to")) {
    return InvalidArgument("journal detail names no template and versions: " + DumpJson(d));
  }
  SavedSwap s;
  s.template_name = d.value("template", "");
  s.from_version = d.value("from", int64_t{0});
  s.to_version = d.value("to", int64_t{0});
  ASSIGN_OR_RETURN(SwapOrder order,
                   SwapOrderFromName(d.value("order", std::string("break-before-make"))));
  s.kind = KindOf(d.value("os_swap", false), order);
  s.old_app = d.value("old_app", "");
  s.new_app = d.value("new_app", "");
  s.old_os = d.value("old_os", "");
  s.new_os = d.value("new_os", "");
  s.old_serial = d.value("old_serial", std::string(kAppSerial));
  s.new_serial = d.value("new_serial", std::string(kAppSerial));
  return s;
}

ResumeDirection DecideResume(const SavedSwap& saved, const JournalEntry& last,
                             const VmLiveState& live) {
  if (last.step == SwapStep::kRollingBack) return ResumeDirection::kBack;
  bool forward = false;
  switch (saved.kind) {
    case SwapKind::kAppBreakBeforeMake:
      forward = AppDiskIn(live, saved.new_serial, saved.new_app);
      break;
    case SwapKind::kAppMakeBeforeBreak: {
      const bool healthy_seen =
          last.step == SwapStep::kReleased ||
          (last.step == SwapStep::kSwitched && last.phase == SwapPhase::kDone);
      forward = healthy_seen && AppDiskIn(live, saved.new_serial, saved.new_app);
      break;
    }
    case SwapKind::kOs: {
      const DiskSpec* os = live.Disk(kOsSerial);
      forward = os != nullptr && !saved.new_os.empty() &&
                os->path.substr(os->path.rfind('/') + 1) == saved.new_os;
      break;
    }
  }
  return forward ? ResumeDirection::kForward : ResumeDirection::kBack;
}

}  // namespace vdswap
