#include "rollout/policy.h"

#include <charconv>
#include <limits>
#include <optional>

#include "core/enum_names.h"

namespace vdswap {

namespace {

using std::chrono::milliseconds;

Result<int64_t> ParseCount(std::string_view digits, std::string_view text, std::string_view flag) {
  int64_t v = -1;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
  if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size() || v < 0) {
    return InvalidArgument(std::string(flag) + " must be N or P%, got '" + std::string(text) + "'");
  }
  return v;
}

constexpr EnumNames<OnFailure, 2> kOnFailure = {
    {{OnFailure::kPause, "pause"}, {OnFailure::kRollback, "rollback"}}};
constexpr EnumNames<MaxAction, 2> kMaxAction = {{{MaxAction::kApp, "app"}, {MaxAction::kOs, "os"}}};

// The value named by the JSON string `value`; kInvalidArgument with `error` otherwise.
template <typename E, size_t N>
Result<E> NamedValue(const EnumNames<E, N>& names, const Json& value, const char* error) {
  std::optional<E> found =
      value.is_string() ? FindValue(names, value.get<std::string>()) : std::nullopt;
  if (!found) return InvalidArgument(error);
  return *found;
}

// A JSON string or a non-negative integer, as text.
Result<std::string> TextOf(const Json& j, const char* field) {
  if (j.is_string()) return j.get<std::string>();
  if (j.is_number_integer() && j.get<int64_t>() >= 0) return std::to_string(j.get<int64_t>());
  return InvalidArgument(std::string("policy.") + field + " must be a string or a number");
}

}  // namespace

int64_t Amount::Of(int64_t total, bool at_least_one) const {
  int64_t n = percent ? total * value / 100 : value;
  if (n > total) n = total;
  if (at_least_one && value > 0 && total > 0 && n < 1) n = 1;
  return n;
}

std::string Amount::ToString() const { return std::to_string(value) + (percent ? "%" : ""); }

Result<Amount> ParseAmount(std::string_view text, std::string_view flag) {
  Amount a;
  std::string_view digits = text;
  if (!text.empty() && text.back() == '%') {
    a.percent = true;
    digits.remove_suffix(1);
  }
  ASSIGN_OR_RETURN(a.value, ParseCount(digits, text, flag));
  if (a.percent && a.value > 100) {
    return InvalidArgument(std::string(flag) + " percentage must be 0-100%, got '" +
                           std::string(text) + "'");
  }
  return a;
}

Result<milliseconds> ParseDuration(std::string_view text, std::string_view flag) {
  auto bad = [&] {
    return InvalidArgument(std::string(flag) +
                           " must be a duration like 500ms, 30s, 5m or 2h, got '" +
                           std::string(text) + "'");
  };
  size_t unit_at = 0;
  while (unit_at < text.size() && text[unit_at] >= '0' && text[unit_at] <= '9') ++unit_at;
  std::string_view number = text.substr(0, unit_at);
  std::string_view unit = text.substr(unit_at);
  int64_t n = 0;
  auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), n);
  if (number.empty() || ec != std::errc() || end != number.data() + number.size()) return bad();
  int64_t scale;
  if (unit == "ms") {
    scale = 1;
  } else if (unit.empty() || unit == "s") {
    scale = 1000;
  } else if (unit == "m") {
    scale = 60'000;
  } else if (unit == "h") {
    scale = 3'600'000;
  } else {
    return bad();
  }
  constexpr int64_t kMax = 30LL * 24 * 3'600'000;  // 30 days
  if (n > kMax / scale) {
    return InvalidArgument(std::string(flag) + " must be at most 30 days, got '" +
                           std::string(text) + "'");
  }
  return milliseconds(n * scale);
}

std::string FormatDuration(milliseconds d) {
  const int64_t ms = d.count();
  if (ms != 0 && ms % 3'600'000 == 0) return std::to_string(ms / 3'600'000) + "h";
  if (ms != 0 && ms % 60'000 == 0) return std::to_string(ms / 60'000) + "m";
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

Json PolicyToJson(const RolloutPolicy& p) {
  return {{"batch", p.batch.ToString()},
          {"max_per_host", p.max_per_host},
          {"canary", p.canary.ToString()},
          {"canary_wait", p.canary_wait ? Json(FormatDuration(*p.canary_wait)) : Json()},
          {"min_ready", FormatDuration(p.min_ready)},
          {"max_failures", p.max_failures.ToString()},
          {"on_failure", NameOf(kOnFailure, p.on_failure)},
          {"max_action", NameOf(kMaxAction, p.max_action)},
          {"swap_order", p.swap_order ? Json(SwapOrderName(*p.swap_order)) : Json()}};
}

Result<RolloutPolicy> PolicyFromJson(const Json& j) {
  RolloutPolicy p;
  if (j.is_null()) return p;
  if (!j.is_object()) return InvalidArgument("policy must be a JSON object");
  for (const auto& item : j.items()) {
    const std::string& key = item.key();
    const Json& value = item.value();
    std::string flag = "--" + key;
    for (char& c : flag) c = c == '_' ? '-' : c;
    if (key == "batch" || key == "canary" || key == "max_failures") {
      ASSIGN_OR_RETURN(std::string text, TextOf(value, key.c_str()));
      ASSIGN_OR_RETURN(Amount a, ParseAmount(text, flag));
      if (key == "batch") {
        if (a.value == 0) return InvalidArgument("--batch must be at least 1 (or 1%-100%)");
        p.batch = a;
      } else if (key == "canary") {
        p.canary = a;
      } else {
        p.max_failures = a;
      }
    } else if (key == "max_per_host") {
      if (!value.is_number_integer() || value.get<int64_t>() < 1 || value.get<int64_t>() > 1000) {
        return InvalidArgument("--max-per-host must be an integer 1-1000");
      }
      p.max_per_host = value.get<int64_t>();
    } else if (key == "canary_wait" || key == "min_ready") {
      if (value.is_null() && key == "canary_wait") continue;
      ASSIGN_OR_RETURN(std::string text, TextOf(value, key.c_str()));
      ASSIGN_OR_RETURN(milliseconds d, ParseDuration(text, flag));
      if (key == "canary_wait") {
        p.canary_wait = d;
      } else {
        p.min_ready = d;
      }
    } else if (key == "on_failure") {
      ASSIGN_OR_RETURN(p.on_failure,
                       NamedValue(kOnFailure, value, "--on-failure must be rollback or pause"));
    } else if (key == "max_action") {
      ASSIGN_OR_RETURN(p.max_action,
                       NamedValue(kMaxAction, value, "--max-action must be app or os"));
    } else if (key == "swap_order") {
      if (value.is_null()) continue;
      auto order = value.is_string() ? SwapOrderFromName(value.get<std::string>())
                                     : Result<SwapOrder>(InvalidArgument(""));
      if (!order.ok()) {
        return InvalidArgument("--swap-order must be make-before-break or break-before-make");
      }
      p.swap_order = *order;
    } else {
      return InvalidArgument("unknown policy field '" + key + "'");
    }
  }
  return p;
}

}  // namespace vdswap
