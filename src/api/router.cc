#include "api/router.h"

namespace vdswap {

void Router::Add(Method method, std::string pattern, ApiHandler handler, Wait wait) {
  patterns_.emplace_back(pattern);
  routes_.push_back({method, std::move(pattern), std::move(handler), wait});
}

RouteMatch Router::Match(std::string_view method, const std::string& path) const {
  RouteMatch out;
  for (size_t i = 0; i < routes_.size(); ++i) {
    std::smatch m;
    if (!std::regex_match(path, m, patterns_[i])) continue;
    if (method != MethodName(routes_[i].method)) {
      out.allowed.insert(routes_[i].method);
      continue;
    }
    out.kind = RouteMatch::Kind::kFound;
    out.route = &routes_[i];
    for (size_t g = 1; g < m.size(); ++g) out.params.push_back(m[g]);
    return out;
  }
  if (!out.allowed.empty()) out.kind = RouteMatch::Kind::kMethodNotAllowed;
  return out;
}

}  // namespace vdswap
