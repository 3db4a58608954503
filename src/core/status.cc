#include "core/status.h"

namespace vdswap {

namespace {
constexpr std::pair<Code, std::string_view> kNames[] = {
    {Code::kOk, "ok"},
    {Code::kInvalidArgument, "invalid_argument"},
    {Code::kNotFound, "not_found"},
    {Code::kAlreadyExists, "already_exists"},
    {Code::kFailedPrecondition, "failed_precondition"},
    {Code::kUnavailable, "unavailable"},
    {Code::kInternal, "internal"},
};
}  // namespace

std::string_view CodeName(Code code) {
  for (const auto& [c, name] : kNames) {
    if (c == code) return name;
  }
  return "internal";
}

Code CodeFromName(std::string_view name) {
  for (const auto& [c, n] : kNames) {
    if (n == name) return c;
  }
  return Code::kInternal;
}

Status Status::WithContext(std::string_view context) const {
  if (ok()) return *this;
  return Status(code_, std::string(context) + ": " + message_);
}

std::string Status::ToString() const {
  if (ok()) return "ok";
  return std::string(CodeName(code_)) + ": " + message_;
}

}  // namespace vdswap
