#include "fleet/swap_journal.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "testing/fleet_testbed.h"

namespace vdswap::testing {
namespace {

JournalEntry Entry(SwapStep step, SwapPhase phase) {
  return {"vm1", 0, step, phase, Json{{"to", 2}}};
}

class SwapJournalTest : public ::testing::Test {
 protected:
  void SetUp() override { tb_.CreateVms({"vm1"}); }

  Result<SwapOutcome> SwapTo(Swapper& swapper, int64_t version) {
    auto t = tb_.templates.Get("web:" + std::to_string(version));
    EXPECT_TRUE(t.ok());
    return swapper.Swap("vm1", *t, 0, nullptr);
  }

  FleetTestbed tb_;
};

TEST_F(SwapJournalTest, APlainDoneEntryIsDurableWithTheNextEntryOnly) {
  SwapJournal journal(*tb_.db);
  ASSERT_TRUE(journal.Append(Entry(SwapStep::kStopped, SwapPhase::kIntent), 1).ok());
  ASSERT_TRUE(journal.Append(Entry(SwapStep::kStopped, SwapPhase::kDone), 2).ok());
  // This process sees it; the disk (another reader, as after a crash) does not yet.
  EXPECT_EQ((*journal.Last("vm1"))->phase, SwapPhase::kDone);
  SwapJournal after_crash(*tb_.db);
  EXPECT_EQ((*after_crash.Last("vm1"))->step, SwapStep::kStopped);
  EXPECT_EQ((*after_crash.Last("vm1"))->phase, SwapPhase::kIntent);
  EXPECT_EQ(*after_crash.RowCount("vm1"), 1);

  // The next intent is durable before the action it guards, with the done entry first.
  ASSERT_TRUE(journal.Append(Entry(SwapStep::kDetached, SwapPhase::kIntent), 3).ok());
  EXPECT_EQ(*after_crash.RowCount("vm1"), 3);
  EXPECT_EQ((*after_crash.Last("vm1"))->step, SwapStep::kDetached);
}

TEST_F(SwapJournalTest, IntentsTerminalsAndSwitchedDoneAreWrittenAtOnce) {
  for (SwapStep step :
       {SwapStep::kChecked, SwapStep::kStarted, SwapStep::kSwitched, SwapStep::kRollingBack}) {
    EXPECT_TRUE(SwapJournal::WrittenAtOnce(Entry(step, SwapPhase::kIntent)));
  }
  for (SwapStep step :
       {SwapStep::kDone, SwapStep::kRolledBack, SwapStep::kFailed, SwapStep::kSwitched}) {
    EXPECT_TRUE(SwapJournal::WrittenAtOnce(Entry(step, SwapPhase::kDone)));
  }
  SwapJournal journal(*tb_.db);
  ASSERT_TRUE(journal.Append(Entry(SwapStep::kSwitched, SwapPhase::kIntent), 1).ok());
  ASSERT_TRUE(journal.Append(Entry(SwapStep::kSwitched, SwapPhase::kDone), 2).ok());
  SwapJournal after_crash(*tb_.db);
  EXPECT_EQ((*after_crash.Last("vm1"))->phase, SwapPhase::kDone);
}

TEST_F(SwapJournalTest, ASwapEndKeepsOnlyTheLastFinishedSwapsRows) {
  ASSERT_EQ(SwapTo(tb_.swapper, 2)->result, SwapResult::kDone);
  const int64_t one_swap = *tb_.journal.RowCount("vm1");
  ASSERT_GT(one_swap, 2);
  // A failed swap (web:3 never gets healthy) is kept while it is among the last ones...
  ASSERT_EQ(SwapTo(tb_.swapper, 3)->result, SwapResult::kRolledBack);
  const int64_t with_failed = *tb_.journal.RowCount("vm1");
  EXPECT_GT(with_failed, one_swap);
  ASSERT_EQ(SwapTo(tb_.swapper, 1)->result, SwapResult::kDone);
  EXPECT_EQ(*tb_.journal.RowCount("vm1"), with_failed + one_swap);
  // ... and good swaps push it and the first one out: the last kFinishedSwapsKept stay.
  for (int64_t v : {2, 1, 2}) ASSERT_EQ(SwapTo(tb_.swapper, v)->result, SwapResult::kDone);
  EXPECT_EQ(*tb_.journal.RowCount("vm1"), SwapJournal::kFinishedSwapsKept * one_swap);
  EXPECT_TRUE((*tb_.journal.Last("vm1"))->IsTerminal());
}

TEST_F(SwapJournalTest, RetentionKeepsTheUnfinishedSwapAndItResumes) {
  ASSERT_EQ(SwapTo(tb_.swapper, 2)->result, SwapResult::kDone);
  ASSERT_EQ(SwapTo(tb_.swapper, 1)->result, SwapResult::kDone);
  const int64_t finished = *tb_.journal.RowCount("vm1");
  // Dies after the new disk is attached: forward on resume, which needs the swap's rows.
  tb_.swapper.SetCrashHook(
      [](SwapStep s, SwapPhase p) { return s == SwapStep::kAttached && p == SwapPhase::kIntent; });
  ASSERT_FALSE(SwapTo(tb_.swapper, 2).ok());
  SwapJournal journal(*tb_.db);  // what is on disk
  EXPECT_GT(*journal.RowCount("vm1"), finished);
  ASSERT_EQ(*journal.Unfinished(), std::vector<std::string>{"vm1"});
  auto resumed = tb_.NewSwapper(journal)->Resume("vm1");
  ASSERT_TRUE(resumed.ok()) << resumed.status().ToString();
  EXPECT_EQ(resumed->result, SwapResult::kRolledBack) << resumed->error;
  EXPECT_TRUE(journal.Unfinished()->empty());
  EXPECT_EQ(tb_.vm_table.Get("vm1")->version, 1);
}

}  // namespace
}  // namespace vdswap::testing

namespace vdswap::testing {
namespace {

TEST(SwapJournalGroupCommitTest, ConcurrentAppendsAreAllDurableAndOneBadEntryFailsAlone) {
  FleetTestbed tb;
  std::vector<std::string> vms;
  for (int i = 0; i < 8; ++i) vms.push_back("vm" + std::to_string(i));
  tb.CreateVms(vms);
  SwapJournal journal(*tb.db);
  constexpr int kEach = 20;
  std::vector<std::thread> threads;
  std::atomic<int> failed{0};
  for (const auto& vm : vms) {
    threads.emplace_back([&journal, &failed, vm] {
      for (int i = 0; i < kEach; ++i) {
        if (!journal.Append({vm, 0, SwapStep::kChecked, SwapPhase::kIntent, Json::object()}, i)
                 .ok()) {
          ++failed;
        }
      }
    });
  }
  Status ghost;
  threads.emplace_back([&journal, &ghost] {
    ghost = journal.Append({"ghost", 0, SwapStep::kChecked, SwapPhase::kIntent, Json::object()}, 0);
  });
  for (auto& t : threads) t.join();
  EXPECT_EQ(failed, 0);
  EXPECT_FALSE(ghost.ok()) << "a row of a VM that does not exist";
  SwapJournal on_disk(*tb.db);
  for (const auto& vm : vms) EXPECT_EQ(*on_disk.RowCount(vm), kEach) << vm;
}

}  // namespace
}  // namespace vdswap::testing
