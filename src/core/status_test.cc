#include "core/status.h"

#include <gtest/gtest.h>

namespace vdswap {
namespace {

Result<int> Half(int n) {
  if (n % 2 != 0) return InvalidArgument("odd number " + std::to_string(n));
  return n / 2;
}

Result<int> Quarter(int n) {
  ASSIGN_OR_RETURN(int h, Half(n));
  ASSIGN_OR_RETURN(int q, Half(h));
  return q;
}

Status CheckEven(int n) {
  RETURN_IF_ERROR(Half(n).status());
  return Status::Ok();
}

TEST(StatusTest, OkByDefault) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.ToString(), "ok");
}

TEST(StatusTest, CarriesCodeAndMessage) {
  Status s = NotFound("vm 'web-3' not found");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), Code::kNotFound);
  EXPECT_EQ(s.ToString(), "not_found: vm 'web-3' not found");
}

TEST(StatusTest, WithContextPrefixesMessageAndKeepsCode) {
  Status s = Unavailable("no answer").WithContext("vm 'a'");
  EXPECT_EQ(s.code(), Code::kUnavailable);
  EXPECT_EQ(s.message(), "vm 'a': no answer");
  EXPECT_TRUE(Status::Ok().WithContext("x").ok());
}

TEST(StatusTest, CodeNamesRoundTrip) {
  for (Code c : {Code::kOk, Code::kInvalidArgument, Code::kNotFound, Code::kAlreadyExists,
                 Code::kFailedPrecondition, Code::kUnavailable, Code::kInternal}) {
    EXPECT_EQ(CodeFromName(CodeName(c)), c);
  }
  EXPECT_EQ(CodeFromName("bogus"), Code::kInternal);
}

TEST(ResultTest, HoldsValueOrStatus) {
  Result<int> ok = Half(8);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(*ok, 4);
  Result<int> bad = Half(3);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), Code::kInvalidArgument);
}

TEST(ResultTest, AssignOrReturnPropagatesFirstError) {
  EXPECT_EQ(*Quarter(8), 2);
  Result<int> r = Quarter(6);  // 6/2 = 3 is odd
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "odd number 3");
}

TEST(ResultTest, ReturnIfErrorPropagates) {
  EXPECT_TRUE(CheckEven(2).ok());
  EXPECT_EQ(CheckEven(1).code(), Code::kInvalidArgument);
}

TEST(ResultTest, MovesOutMoveOnlyValues) {
  Result<std::unique_ptr<int>> r = std::make_unique<int>(7);
  std::unique_ptr<int> p = std::move(r).value();
  EXPECT_EQ(*p, 7);
}

}  // namespace
}  // namespace vdswap
