#pragma once

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "api/metrics.h"
#include "api/router.h"
#include "api/token_auth.h"
#include "core/status.h"

namespace httplib {
class Server;
}

namespace vdswap {

// Maps a Code to the HTTP status the API answers with.
int HttpStatusFor(Code code);

// Serves a Router over HTTP/1.1 on a unix socket and, optionally, on TCP with a bearer
// token. Each listener runs on its own thread; Stop() ends them all.
// Errors are `{"error": {"code": ..., "message": ...}}`; GET /metrics is Prometheus text.
// A request with `Accept: application/x-ndjson` gets a stream of `{"progress": ...}`
// lines ending with one `{"result": ...}` or `{"error": ...}` line.
class HttpServer {
 public:
  HttpServer(const Router& router, Metrics& metrics);
  ~HttpServer();

  // Binds `path` (replacing a stale socket file, mode 0660) and serves it.
  Status ListenUnix(const std::string& path);
  // Binds addr:port and serves it; every request needs `auth`'s token, else 401.
  Status ListenTcp(const std::string& addr, int port, TokenAuth auth);
  // Stops every listener and waits for their threads. Idempotent.
  void Stop();

 private:
  void Install(httplib::Server& server, const TokenAuth* auth);

  const Router& router_;
  Metrics& metrics_;
  std::vector<std::unique_ptr<httplib::Server>> servers_;
  std::vector<std::unique_ptr<TokenAuth>> auths_;
  std::vector<std::thread> threads_;
  std::vector<std::string> socket_paths_;
};

}  // namespace vdswap
