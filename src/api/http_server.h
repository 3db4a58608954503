#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "api/metrics.h"
#include "api/router.h"
#include "api/token_auth.h"
#include "core/status.h"

namespace vdswap {

// Maps a Code to the HTTP status the API answers with.
int HttpStatusFor(Code code);

// What one client may cost the server. The defaults suit vdswapd.
struct HttpLimits {
  size_t max_body_bytes = size_t{1} << 20;            // larger bodies get 413, unread
  unsigned idle_timeout_seconds = 30;                 // a connection silent this long is closed
  unsigned max_connections = 512;                     // per listener
  unsigned max_connections_per_ip = 32;               // TCP only
  size_t connection_memory_bytes = size_t{64} << 10;  // request line + headers
  int quick_workers = 4;                              // threads for plain GETs
  int long_workers = 16;                              // threads for everything that may wait
  size_t max_queued = 256;                            // per pool; beyond, 503
};

// Serves a Router over HTTP/1.1 on a unix socket and, optionally, on TCP with a bearer
// token (else 401). Built on libmicrohttpd: one event-driven thread per listener reads
// and writes every connection, so an idle or slow client costs a file descriptor, never
// a thread. A request is handled once it has fully arrived: its connection is suspended
// and the handler runs on a worker pool, quick GETs on one, everything that may wait
// (POST, DELETE, ?wait, ?watch, streams, GETs of routes added with Wait::kMay) on
// another, so `status` is answered while long operations run. When the client goes away,
// or Stop() is called, the request's ApiRequest::Cancelled() turns true.
// Errors are `{"error": {"code": ..., "message": ...}}`; a known path with another method
// is 405 with `Allow`; GET /metrics is Prometheus text. A request with
// `Accept: application/x-ndjson` gets a stream of `{"progress": ...}` lines ending with
// one `{"result": ...}` or `{"error": ...}` line.
class HttpServer {
 public:
  HttpServer(const Router& router, Metrics& metrics, HttpLimits limits = {});
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds `path` (replacing a stale socket file, mode 0660) and serves it.
  Status ListenUnix(const std::string& path);
  // Binds addr:port and serves it; every request needs `auth`'s token, else 401.
  Status ListenTcp(const std::string& addr, int port, TokenAuth auth);
  // Cancels every request in flight, stops accepting, waits for the handlers, then
  // closes every connection. Idempotent.
  void Stop();

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace vdswap
