#include "fleet/saved_swap.h"

#include <gtest/gtest.h>

namespace vdswap {
namespace {

using S = SwapStep;
using K = SwapKind;
constexpr SwapPhase kI = SwapPhase::kIntent, kD = SwapPhase::kDone;
constexpr ResumeDirection kFwd = ResumeDirection::kForward, kBack = ResumeDirection::kBack;

// What the hypervisor reports attached, as disk sets the table names.
enum class Disks { kOldApp, kNewApp, kBothApps, kNoApp, kOldOs, kNewOs, kOtherVmsNewOs };

SavedSwap Saved(SwapKind kind) {
  SavedSwap s;
  s.template_name = "web";
  s.from_version = 1;
  s.to_version = 2;
  s.kind = kind;
  s.old_app = "/p/app-1.erofs";
  s.new_app = "/p/app-2.erofs";
  s.new_serial = kind == K::kAppMakeBeforeBreak ? kAppSerialB : kAppSerial;
  s.old_os = "vm1-os-v1.qcow2";
  s.new_os = kind == K::kOs ? "vm1-os-v2.qcow2" : s.old_os;
  return s;
}

VmLiveState Live(const SavedSwap& s, Disks disks) {
  VmLiveState live;
  live.exists = live.managed = live.running = true;
  auto app = [&](const std::string& serial, const std::string& path) {
    live.disks.push_back({serial, path, "raw", true});
  };
  auto os = [&](const std::string& volume) {
    live.disks.push_back({kOsSerial, "/p/" + volume, "qcow2", false});
  };
  switch (disks) {
    case Disks::kOldApp:
      app(s.old_serial, s.old_app);
      break;
    case Disks::kNewApp:
      app(s.new_serial, s.new_app);
      break;
    case Disks::kBothApps:
      app(s.old_serial, s.old_app);
      app(s.new_serial, s.new_app);
      break;
    case Disks::kNoApp:
      break;
    case Disks::kOldOs:
      os(s.old_os);
      break;
    case Disks::kNewOs:
      os(s.new_os);
      break;
    case Disks::kOtherVmsNewOs:
      os("x" + s.new_os);
      break;
  }
  return live;
}

struct Case {
  SwapKind kind;
  SwapStep step;
  SwapPhase phase;
  Disks disks;
  ResumeDirection want;
};

// The rule, row by row: forward only when the new version's disk is certainly in place.
const Case kCases[] = {
    // Break-before-make: the new app disk in its slot is the whole question.
    {K::kAppBreakBeforeMake, S::kChecked, kI, Disks::kOldApp, kBack},
    {K::kAppBreakBeforeMake, S::kStopped, kD, Disks::kOldApp, kBack},
    {K::kAppBreakBeforeMake, S::kDetached, kD, Disks::kNoApp, kBack},
    {K::kAppBreakBeforeMake, S::kAttached, kI, Disks::kNoApp, kBack},
    {K::kAppBreakBeforeMake, S::kAttached, kI, Disks::kNewApp, kFwd},  // plugged, not journaled
    {K::kAppBreakBeforeMake, S::kAttached, kD, Disks::kNewApp, kFwd},
    {K::kAppBreakBeforeMake, S::kStarted, kD, Disks::kNewApp, kFwd},
    {K::kAppBreakBeforeMake, S::kStarted, kD, Disks::kOldApp, kBack},
    {K::kAppBreakBeforeMake, S::kRollingBack, kI, Disks::kNewApp, kBack},
    // Make-before-break: also the new app seen healthy (switched/done or later).
    {K::kAppMakeBeforeBreak, S::kChecked, kD, Disks::kOldApp, kBack},
    {K::kAppMakeBeforeBreak, S::kAttached, kD, Disks::kBothApps, kBack},
    {K::kAppMakeBeforeBreak, S::kPrepared, kD, Disks::kBothApps, kBack},
    {K::kAppMakeBeforeBreak, S::kSwitched, kI, Disks::kBothApps, kBack},
    {K::kAppMakeBeforeBreak, S::kSwitched, kD, Disks::kBothApps, kFwd},
    {K::kAppMakeBeforeBreak, S::kSwitched, kD, Disks::kOldApp, kBack},
    {K::kAppMakeBeforeBreak, S::kReleased, kI, Disks::kBothApps, kFwd},
    {K::kAppMakeBeforeBreak, S::kReleased, kD, Disks::kNewApp, kFwd},
    {K::kAppMakeBeforeBreak, S::kRollingBack, kI, Disks::kBothApps, kBack},
    // OS: the VM defined on its new overlay, by volume name, not by a substring of it.
    {K::kOs, S::kStopped, kD, Disks::kOldOs, kBack},
    {K::kOs, S::kShutdown, kD, Disks::kOldOs, kBack},
    {K::kOs, S::kOverlay, kD, Disks::kOldOs, kBack},
    {K::kOs, S::kStarted, kI, Disks::kOldOs, kBack},
    {K::kOs, S::kStarted, kI, Disks::kNewOs, kFwd},  // defined, not yet healthy
    {K::kOs, S::kStarted, kD, Disks::kNewOs, kFwd},
    {K::kOs, S::kStarted, kD, Disks::kOtherVmsNewOs, kBack},
    {K::kOs, S::kRollingBack, kI, Disks::kNewOs, kBack},
};

TEST(DecideResumeTest, ForwardOnlyWhenTheNewVersionsDiskIsInPlace) {
  for (const Case& c : kCases) {
    SavedSwap saved = Saved(c.kind);
    JournalEntry last{"vm1", 0, c.step, c.phase, saved.Detail()};
    EXPECT_EQ(DecideResume(saved, last, Live(saved, c.disks)), c.want)
        << SwapKindName(c.kind) << " at " << SwapStepName(c.step) << "/" << SwapPhaseName(c.phase)
        << ", disks case " << static_cast<int>(c.disks);
  }
}

TEST(SavedSwapTest, DetailRoundTripsEveryKind) {
  for (SwapKind kind : {K::kAppBreakBeforeMake, K::kAppMakeBeforeBreak, K::kOs}) {
    SavedSwap s = Saved(kind);
    auto back = SavedSwap::FromDetail(s.Detail());
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_EQ(back->kind, kind);
    EXPECT_EQ(back->Detail(), s.Detail());
  }
}

TEST(SavedSwapTest, ReadsTheDetailOfDaemonsBeforeMakeBeforeBreak) {
  Json old = {{"from", 1},         {"to", 2},           {"template", "web"}, {"os_swap", false},
              {"old_app", "/p/a"}, {"new_app", "/p/b"}, {"old_os", "vm1-o"}, {"new_os", "vm1-o"}};
  auto s = SavedSwap::FromDetail(old);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->kind, K::kAppBreakBeforeMake);
  EXPECT_EQ(s->old_serial, kAppSerial);
  EXPECT_EQ(s->new_serial, kAppSerial);
}

TEST(SavedSwapTest, RejectsADetailWithoutItsTemplate) {
  EXPECT_EQ(SavedSwap::FromDetail(Json::object()).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(SavedSwap::FromDetail(Json{{"template", "web"}, {"from", 1}, {"to", 2}, {"order", "x"}})
                .status()
                .code(),
            Code::kInvalidArgument);
}

}  // namespace
}  // namespace vdswap
