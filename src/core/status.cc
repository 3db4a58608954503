#include "core/status.h"

#include "core/enum_names.h"

namespace vdswap {

namespace {
constexpr EnumNames<Code, 7> kNames = {{
    {Code::kOk, "ok"},
    {Code::kInvalidArgument, "invalid_argument"},
    {Code::kNotFound, "not_found"},
    {Code::kAlreadyExists, "already_exists"},
    {Code::kFailedPrecondition, "failed_precondition"},
    {Code::kUnavailable, "unavailable"},
    {Code::kInternal, "internal"},
}};
}  // namespace

std::string_view CodeName(Code code) { return NameOf(kNames, code); }

Code CodeFromName(std::string_view name) {
  return FindValue(kNames, name).value_or(Code::kInternal);
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
