#pragma once

#include <functional>
#include <map>
#include <regex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "core/json.h"
#include "core/progress.h"
#include "core/status.h"

namespace vdswap {

enum class Method { kGet, kPost, kDelete };

// The HTTP name of a method ("GET").
inline const char* MethodName(Method m) {
  switch (m) {
    case Method::kGet:
      return "GET";
    case Method::kPost:
      return "POST";
    case Method::kDelete:
      return "DELETE";
  }
  return "GET";
}

// The most VMs one `vm create` request may name (the CLI checks it before sending): bounds
// the work, and the time until a stop, that a single request can start.
constexpr size_t kMaxVmsPerCreate = 1000;

struct ApiRequest {
  std::vector<std::string> params;  // the route pattern's capture groups, in order
  std::map<std::string, std::string> query;
  Json body;            // null when the request had no body
  ProgressFn progress;  // never empty; streamed to clients that ask, else dropped
  // True once the result is no longer wanted: the client went away or vdswapd is
  // stopping. Handlers of long operations check it at safe points and stop there.
  // May be empty (never cancelled).
  std::function<bool()> cancelled;

  bool Cancelled() const { return cancelled && cancelled(); }
};

using ApiHandler = std::function<Result<Json>(const ApiRequest&)>;

// Whether a GET handler may wait on something slow: a hypervisor, a guest, a remote
// host. The server runs those apart from quick reads, so that `status` never queues
// behind them. POST, DELETE, ?wait, ?watch and streams always count as waiting.
enum class Wait { kNo, kMay };

struct RouteMatch;

// The API's routes: method + anchored regex pattern -> handler. Filled once at startup,
// then read-only: Add before the first Match; reading (routes(), Match) is thread-safe.
class Router {
 public:
  struct Route {
    Method method;
    std::string pattern;
    ApiHandler handler;
    Wait wait;
  };
  // Adds a route; where several match a request, the first added wins.
  // REQUIRES: `pattern` is a valid std::regex (ECMAScript), matched against the whole path.
  void Add(Method method, std::string pattern, ApiHandler handler, Wait wait = Wait::kNo);
  const std::vector<Route>& routes() const { return routes_; }

  // The route a request for `path` (no query) with `method` (its HTTP name, as sent) takes,
  // or why there is none. Pure: the same arguments give the same answer.
  RouteMatch Match(std::string_view method, const std::string& path) const;

 private:
  std::vector<Route> routes_;
  std::vector<std::regex> patterns_;  // routes_[i].pattern, compiled
};

// What Router::Match found.
struct RouteMatch {
  enum class Kind {
    kFound,             // `route` takes the request, with `params`
    kNoPath,            // no route has the path (the server answers 404)
    kMethodNotAllowed,  // routes have the path, none with the method (405; see `allowed`)
  };
  Kind kind = Kind::kNoPath;
  // kFound: the route, owned by the router (valid while the router lives, with no Add since).
  const Router::Route* route = nullptr;
  // kFound: the route pattern's capture groups, in order (ApiRequest::params).
  std::vector<std::string> params;
  // kMethodNotAllowed: the methods of the routes that have the path, in Method order.
  std::set<Method> allowed;
};

// Reads an optional field of a request body with a type check, naming the field on error.
template <typename T>
Result<T> BodyField(const Json& body, const std::string& key, T fallback) {
  if (!body.is_object() || !body.contains(key) || body[key].is_null()) return fallback;
  T out;
  try {
    out = body[key].get<T>();
  } catch (const Json::exception&) {
    return InvalidArgument("field '" + key + "' has the wrong type");
  }
  return out;
}

}  // namespace vdswap
