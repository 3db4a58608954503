// docs/api.md lists exactly the routes the daemon registers: a route added without its
// documentation, or documented and gone, fails here.
#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "api/host_routes.h"
#include "api/image_routes.h"
#include "api/metrics.h"
#include "api/rollout_routes.h"
#include "api/status_routes.h"
#include "api/template_routes.h"
#include "api/vm_routes.h"
#include "testing/fleet_testbed.h"

namespace vdswap::testing {
namespace {

// "GET /v1/vms/{}": a route with its parameters unnamed.
std::set<std::string> RegisteredRoutes() {
  FleetTestbed tb;
  Metrics metrics;
  Router router;
  RegisterStatusRoutes(
      router, metrics, *tb.db,
      {tb.hosts, tb.host_images, tb.images, tb.templates, tb.vm_table, tb.rollout_store},
      {"/state", "fake", "fake:///", std::chrono::steady_clock::now()});
  RegisterImageRoutes(router, tb.images, tb.runner, tb.clock);
  RegisterHostRoutes(router, tb.hosts, tb.host_images, tb.vm_table);
  RegisterTemplateRoutes(router, tb.templates);
  RegisterVmRoutes(router, tb.vms, tb.vm_table);
  RegisterRolloutRoutes(router, tb.rollouts);
  std::set<std::string> out;
  for (const auto& route : router.routes()) {
    out.insert(std::string(MethodName(route.method)) + " " +
               std::regex_replace(route.pattern, std::regex(R"(\(\[\^/\]\+\))"), "{}"));
  }
  out.insert("GET /metrics");  // served by the HTTP server itself
  return out;
}

// The `### \`METHOD /path/{name}\`` headings of docs/api.md, parameters unnamed.
std::set<std::string> DocumentedRoutes() {
  std::ifstream in(std::string(SOURCE_DIR) + "/docs/api.md");
  EXPECT_TRUE(in.is_open()) << "docs/api.md is missing";
  std::set<std::string> out;
  std::string line;
  const std::regex heading(R"(^### `((GET|POST|DELETE) /[^`]*)`\s*$)");
  std::smatch m;
  while (std::getline(in, line)) {
    if (std::regex_match(line, m, heading)) {
      EXPECT_TRUE(
          out.insert(std::regex_replace(m[1].str(), std::regex(R"(\{[a-z_]+\})"), "{}")).second)
          << "documented twice: " << line;
    }
  }
  return out;
}

TEST(ApiDocsTest, DocsListEveryRegisteredRouteAndNoOther) {
  const auto registered = RegisteredRoutes();
  const auto documented = DocumentedRoutes();
  for (const auto& r : registered) EXPECT_TRUE(documented.count(r)) << "undocumented: " << r;
  for (const auto& d : documented) EXPECT_TRUE(registered.count(d)) << "no such route: " << d;
  EXPECT_GE(registered.size(), 29u);
}

}  // namespace
}  // namespace vdswap::testing
