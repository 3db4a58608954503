#pragma once

#include <memory>
#include <string>

#include "api/router.h"
#include "core/json.h"
#include "core/status.h"

namespace vdswap {

// Talks to vdswapd's HTTP API over its unix socket or TCP with a bearer token.
// Not thread-safe; one client per thread.
class ApiClient {
 public:
  // Where and how to reach the daemon.
  struct Endpoint {
    std::string socket_path;  // used when url is empty
    std::string url;          // http://host:port
    std::string token;        // bearer token for url
  };

  explicit ApiClient(Endpoint endpoint);
  ~ApiClient();

  // Sends one request. Returns the daemon's JSON answer, or:
  //  - kUnavailable only when the daemon could not be reached (no socket, refused, timed
  //    out), with a message that says how to start it;
  //  - the daemon's own error code and message otherwise. A daemon that answered is
  //    reachable, so its "unavailable" errors (a guest or host not answering) come back
  //    as kInternal: the operation failed.
  // With `progress`, the daemon streams progress events to it while it works.
  Result<Json> Call(Method method, const std::string& path, const Json& body = nullptr,
                    const ProgressFn& progress = nullptr);

  // The HTTP status of the last answer (401: the bearer token was refused); 0 when the
  // daemon was not reached.
  int last_http_status() const { return last_http_status_; }

  // "unix:/path" or the URL, for messages.
  std::string Describe() const;

 private:
  Endpoint endpoint_;
  int last_http_status_ = 0;
};

}  // namespace vdswap
