#pragma once

#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "core/status.h"

namespace vdswap {

// The names of an enum's values, as stored and shown at the edges (store rows, the API).
template <typename E, size_t N>
using EnumNames = std::array<std::pair<E, std::string_view>, N>;

// The name of `e`. REQUIRES: `names` lists every value of E.
template <typename E, size_t N>
std::string_view NameOf(const EnumNames<E, N>& names, E e) {
  for (const auto& [value, name] : names) {
    if (value == e) return name;
  }
  return "?";
}

// The value named `name`, or nullopt.
template <typename E, size_t N>
std::optional<E> FindValue(const EnumNames<E, N>& names, std::string_view name) {
  for (const auto& [value, n] : names) {
    if (n == name) return value;
  }
  return std::nullopt;
}

// The value named `name`; kInvalidArgument naming `what` ("vm state") otherwise.
template <typename E, size_t N>
Result<E> ValueOf(const EnumNames<E, N>& names, std::string_view name, std::string_view what) {
  if (std::optional<E> value = FindValue(names, name)) return *value;
  return InvalidArgument(std::string(what) + " '" + std::string(name) + "' is not known");
}

}  // namespace vdswap
