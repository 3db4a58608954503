#include "api/http_server.h"

#include <microhttpd.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <charconv>
#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include "api/worker_pool.h"
#include "core/log.h"

namespace vdswap {

namespace {

// How often suspended connections are checked for a client that went away.
constexpr auto kHangupCheck = std::chrono::milliseconds(100);
constexpr size_t kStreamBlock = 4096;

std::string ErrorBody(const Status& s) {
  return DumpJson({{"error", {{"code", CodeName(s.code())}, {"message", s.message()}}}});
}

// A complete answer, built off the event thread and queued on it.
struct Reply {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

Reply ErrorReply(int status, const Status& s) {
  return {status, "application/json", ErrorBody(s), {}};
}

// The 405 for `method` on `url`, a path that takes only the methods `allowed`.
Reply MethodNotAllowed(const std::string& method, const std::string& url,
                       const std::set<Method>& allowed) {
  std::string allow;
  for (Method m : allowed) allow += (allow.empty() ? "" : ", ") + std::string(MethodName(m));
  Reply r = ErrorReply(405, InvalidArgument("method " + method + " is not allowed on " + url +
                                            " (allowed: " + allow + ")"));
  r.headers.emplace_back("Allow", allow);
  return r;
}

// Creates a listening socket for `addr` (mode 0660 for a unix path); returns its fd.
Result<int> ListenOn(const sockaddr* addr, socklen_t len, const std::string& what) {
  int fd = ::socket(addr->sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return Internal(std::string("socket: ") + strerror(errno));
  int one = 1;
  if (addr->sa_family != AF_UNIX) ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  bool ok = ::bind(fd, addr, len) == 0;
  if (ok && addr->sa_family == AF_UNIX) {
    ok = ::chmod(reinterpret_cast<const sockaddr_un*>(addr)->sun_path, 0660) == 0;
  }
  if (!ok || ::listen(fd, 128) != 0) {
    std::string err = strerror(errno);
    ::close(fd);
    return Unavailable("cannot listen on " + what + ": " + err);
  }
  return fd;
}

}  // namespace

// One request from its headers to its answer. Shared by the event thread (through the
// connection's slot), the worker running its handler, and the hang-up watcher.
struct Exchange {
  enum class Stage { kReading, kRunning, kDone };

  HttpServer::Impl* owner = nullptr;
  MHD_Connection* connection = nullptr;
  int fd = -1;
  std::string method;
  std::string url;
  std::map<std::string, std::string> query;
  std::string body;
  bool unauthorized = false;
  bool too_large = false;
  std::atomic<bool> cancelled{false};
  // Guarded by Impl::mu_.
  Stage stage = Stage::kReading;
  bool suspended = false;
  Reply reply;  // when kDone, for a plain answer
  bool streaming = false;
  std::string pending;  // stream bytes not yet sent
};

struct Listener {
  HttpServer::Impl* impl = nullptr;
  MHD_Daemon* daemon = nullptr;
  std::unique_ptr<TokenAuth> auth;  // null on the unix socket
  std::string socket_path;          // unix socket only
};

class HttpServer::Impl {
 public:
  Impl(const Router& router, Metrics& metrics, HttpLimits limits)
      : router_(router),
        metrics_(metrics),
        limits_(limits),
        quick_(limits.quick_workers, limits.max_queued),
        long_(limits.long_workers, limits.max_queued) {
    metrics_.DescribeCounter("vdswap_api_requests_total", "API requests by route and status.");
    watcher_ = std::thread([this] { WatchHangups(); });
  }
  ~Impl() { Stop(); }

  Status Serve(int fd, std::unique_ptr<TokenAuth> auth, std::string socket_path);
  void Stop();

 private:
  static MHD_Result OnRequest(void* cls, MHD_Connection* c, const char* url, const char* method,
                              const char* version, const char* upload_data,
                              size_t* upload_data_size, void** con_cls);
  static void OnCompleted(void* cls, MHD_Connection* c, void** con_cls,
                          MHD_RequestTerminationCode toe);
  static ssize_t ReadStream(void* cls, uint64_t pos, char* buf, size_t max);
  static void FreeStream(void* cls);

  MHD_Result Handle(Listener& l, MHD_Connection* c, const char* url, const char* method,
                    const char* upload_data, size_t* upload_data_size, void** con_cls);
  // Answers a request that has fully arrived: at once when no route takes it or its body
  // is not JSON, else through Submit.
  MHD_Result Dispatch(MHD_Connection* c, const std::shared_ptr<Exchange>& ex);
  // Queues `route`'s handler on a worker pool and suspends or streams the connection
  // until it answers; 503 at once when stopping or the pool is full.
  MHD_Result Submit(MHD_Connection* c, const std::shared_ptr<Exchange>& ex,
                    const Router::Route& route, std::vector<std::string> params, Json body);
  void Run(const Router::Route& route, std::vector<std::string> params,
           const std::shared_ptr<Exchange>& ex, Json body);
  void Append(const std::shared_ptr<Exchange>& ex, const std::string& bytes, bool last);
  void Finish(const std::shared_ptr<Exchange>& ex, Reply reply);
  void WatchHangups();
  static MHD_Result Queue(MHD_Connection* c, const Reply& reply);

  const Router& router_;
  Metrics& metrics_;
  const HttpLimits limits_;
  WorkerPool quick_;
  WorkerPool long_;
  std::vector<std::unique_ptr<Listener>> listeners_;
  bool stopped_ = false;  // Stop() ran; only touched by the owner's thread

  std::mutex mu_;  // guards the Exchange fields so marked, and what follows
  bool stopping_ = false;
  std::set<std::shared_ptr<Exchange>> in_flight_;
  bool watcher_stop_ = false;
  std::condition_variable watcher_cv_;
  std::thread watcher_;
};

Status HttpServer::Impl::Serve(int fd, std::unique_ptr<TokenAuth> auth, std::string socket_path) {
  auto l = std::make_unique<Listener>();
  l->impl = this;
  l->auth = std::move(auth);
  l->socket_path = std::move(socket_path);
  const bool tcp = l->auth != nullptr;
  l->daemon = MHD_start_daemon(
      MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME, 0, nullptr,
      nullptr, &Impl::OnRequest, l.get(), MHD_OPTION_LISTEN_SOCKET, fd,
      MHD_OPTION_CONNECTION_TIMEOUT, limits_.idle_timeout_seconds, MHD_OPTION_CONNECTION_LIMIT,
      limits_.max_connections, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
      tcp ? limits_.max_connections_per_ip : 0U, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
      limits_.connection_memory_bytes, MHD_OPTION_NOTIFY_COMPLETED, &Impl::OnCompleted, this,
      MHD_OPTION_END);
  if (l->daemon == nullptr) {
    ::close(fd);
    if (!l->socket_path.empty()) ::unlink(l->socket_path.c_str());
    return Unavailable("cannot start the HTTP server");
  }
  listeners_.push_back(std::move(l));
  return Status::Ok();
}

void HttpServer::Impl::Stop() {
  if (stopped_) return;
  stopped_ = true;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    for (const auto& ex : in_flight_) ex->cancelled = true;
  }
  for (auto& l : listeners_) {
    int fd = MHD_quiesce_daemon(l->daemon);
    if (fd >= 0) ::close(fd);
  }
  // The handlers see Cancelled() and end at their next safe point; their connections
  // are resumed and answered before the event threads stop.
  quick_.Drain();
  long_.Drain();
  {
    std::lock_guard lock(mu_);
    watcher_stop_ = true;
  }
  watcher_cv_.notify_all();
  if (watcher_.joinable()) watcher_.join();
  for (auto& l : listeners_) {
    MHD_stop_daemon(l->daemon);
    if (!l->socket_path.empty()) ::unlink(l->socket_path.c_str());
  }
  listeners_.clear();
}

MHD_Result HttpServer::Impl::OnRequest(void* cls, MHD_Connection* c, const char* url,
                                       const char* method, const char* /*version*/,
                                       const char* upload_data, size_t* upload_data_size,
                                       void** con_cls) {
  auto* l = static_cast<Listener*>(cls);
  return l->impl->Handle(*l, c, url, method, upload_data, upload_data_size, con_cls);
}

void HttpServer::Impl::OnCompleted(void* /*cls*/, MHD_Connection* /*c*/, void** con_cls,
                                   MHD_RequestTerminationCode /*toe*/) {
  auto* slot = static_cast<std::shared_ptr<Exchange>*>(*con_cls);
  if (slot == nullptr) return;
  // Ended before its handler did (a stream whose client went away): nobody wants more.
  (*slot)->cancelled = true;
  delete slot;
  *con_cls = nullptr;
}

MHD_Result HttpServer::Impl::Queue(MHD_Connection* c, const Reply& reply) {
  MHD_Response* r = MHD_create_response_from_buffer(
      reply.body.size(), const_cast<char*>(reply.body.data()), MHD_RESPMEM_MUST_COPY);
  if (r == nullptr) return MHD_NO;
  MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, reply.content_type.c_str());
  for (const auto& [name, value] : reply.headers) {
    MHD_add_response_header(r, name.c_str(), value.c_str());
  }
  MHD_Result out = MHD_queue_response(c, static_cast<unsigned>(reply.status), r);
  MHD_destroy_response(r);
  return out;
}

MHD_Result HttpServer::Impl::Handle(Listener& l, MHD_Connection* c, const char* url,
                                    const char* method, const char* upload_data,
                                    size_t* upload_data_size, void** con_cls) {
  auto* slot = static_cast<std::shared_ptr<Exchange>*>(*con_cls);
  if (slot == nullptr) {  // the headers are in
    auto ex = std::make_shared<Exchange>();
    const char* authorization = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    ex->unauthorized =
        l.auth != nullptr && !l.auth->Check(authorization != nullptr ? authorization : "");
    ex->owner = this;
    ex->connection = c;
    ex->method = method;
    ex->url = url;
    MHD_get_connection_values(
        c, MHD_GET_ARGUMENT_KIND,
        [](void* q, MHD_ValueKind, const char* key, const char* value) -> MHD_Result {
          (*static_cast<std::map<std::string, std::string>*>(q))[key] = value ? value : "";
          return MHD_YES;
        },
        &ex->query);
    if (const MHD_ConnectionInfo* info =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD)) {
      ex->fd = info->connect_fd;
    }
    // A body over the cap, or sent without the token, is read and dropped, then refused: a
    // client still sending when the connection closed would see no answer at all.
    if (const char* length = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length")) {
      uint64_t n = 0;
      auto [p, ec] = std::from_chars(length, length + std::strlen(length), n);
      ex->too_large = ec == std::errc() && n > limits_.max_body_bytes;
    }
    ex->streaming = [&] {
      const char* accept = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Accept");
      return accept != nullptr && std::strstr(accept, "application/x-ndjson") != nullptr;
    }();
    *con_cls = new std::shared_ptr<Exchange>(std::move(ex));
    return MHD_YES;
  }
  const std::shared_ptr<Exchange>& ex = *slot;
  if (*upload_data_size != 0) {  // a piece of the body
    if (!ex->too_large && !ex->unauthorized &&
        ex->body.size() + *upload_data_size > limits_.max_body_bytes) {
      ex->too_large = true;
      std::string().swap(ex->body);
    }
    if (!ex->too_large && !ex->unauthorized) ex->body.append(upload_data, *upload_data_size);
    *upload_data_size = 0;
    return MHD_YES;
  }
  if (ex->unauthorized) {
    Reply r = ErrorReply(401, InvalidArgument("missing or wrong bearer token"));
    r.headers.emplace_back("WWW-Authenticate", "Bearer");
    return Queue(c, r);
  }
  if (ex->too_large) {
    return Queue(
        c, ErrorReply(413, InvalidArgument("request body is larger than " +
                                           std::to_string(limits_.max_body_bytes) + " bytes")));
  }
  Exchange::Stage stage;
  {
    std::lock_guard lock(mu_);
    stage = ex->stage;
  }
  switch (stage) {
    case Exchange::Stage::kReading:
      return Dispatch(c, ex);
    case Exchange::Stage::kRunning:
      return MHD_YES;  // not reached: a running exchange's connection is suspended
    case Exchange::Stage::kDone:
      return Queue(c, ex->reply);  // resumed by Finish()
  }
  return MHD_NO;
}

MHD_Result HttpServer::Impl::Dispatch(MHD_Connection* c, const std::shared_ptr<Exchange>& ex) {
  if (ex->url == "/metrics") {
    if (ex->method != "GET") return Queue(c, MethodNotAllowed(ex->method, ex->url, {Method::kGet}));
    return Queue(c, {200, "text/plain; version=0.0.4", metrics_.Render(), {}});
  }
  RouteMatch match = router_.Match(ex->method, ex->url);
  switch (match.kind) {
    case RouteMatch::Kind::kNoPath:
      return Queue(c, ErrorReply(404, NotFound("no API route for " + ex->method + " " + ex->url)));
    case RouteMatch::Kind::kMethodNotAllowed:
      return Queue(c, MethodNotAllowed(ex->method, ex->url, match.allowed));
    case RouteMatch::Kind::kFound:
      break;
  }
  Json body;
  if (!ex->body.empty()) {
    auto parsed = ParseJson(ex->body, "request body");
    if (!parsed.ok() || !parsed->is_object()) {
      return Queue(c, ErrorReply(400, InvalidArgument("request body must be a JSON object")));
    }
    body = std::move(*parsed);
    std::string().swap(ex->body);
  }
  return Submit(c, ex, *match.route, std::move(match.params), std::move(body));
}

MHD_Result HttpServer::Impl::Submit(MHD_Connection* c, const std::shared_ptr<Exchange>& ex,
                                    const Router::Route& route, std::vector<std::string> params,
                                    Json body) {
  // Whatever may wait goes to the long pool, so plain reads (status) always find a thread.
  const bool may_wait = route.wait == Wait::kMay || ex->method != "GET" || ex->streaming ||
                        ex->query.count("wait") > 0 || ex->query.count("watch") > 0;
  WorkerPool& pool = may_wait ? long_ : quick_;
  std::unique_lock lock(mu_);
  if (stopping_) {  // checked under mu_: Stop() cancels what is in flight under it
    lock.unlock();
    return Queue(c, ErrorReply(503, Unavailable("vdswapd is stopping")));
  }
  auto job = [this, route = &route, params = std::move(params), ex,
              body = std::move(body)]() mutable {
    Run(*route, std::move(params), ex, std::move(body));
  };
  if (!pool.Submit(std::move(job))) {
    lock.unlock();
    return Queue(c, ErrorReply(503, Unavailable("vdswapd is busy: too many requests in flight; "
                                                "try again")));
  }
  ex->stage = Exchange::Stage::kRunning;
  in_flight_.insert(ex);
  if (ex->streaming) {
    // Sent as the handler produces it; ReadStream suspends the connection while it waits.
    MHD_Response* r =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, kStreamBlock, &Impl::ReadStream,
                                          new std::shared_ptr<Exchange>(ex), &Impl::FreeStream);
    if (r == nullptr) return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/x-ndjson");
    MHD_Result out = MHD_queue_response(c, 200, r);
    MHD_destroy_response(r);
    return out;
  }
  // Resumed by Finish(), which takes mu_ first: it cannot resume before this suspends.
  ex->suspended = true;
  MHD_suspend_connection(c);
  return MHD_YES;
}

void HttpServer::Impl::Run(const Router::Route& route, std::vector<std::string> params,
                           const std::shared_ptr<Exchange>& ex, Json body) {
  ApiRequest api;
  api.params = std::move(params);
  api.query = ex->query;
  api.body = std::move(body);
  api.cancelled = [ex] { return ex->cancelled.load(); };
  if (ex->streaming) {
    api.progress = [this, &ex](const Json& event) {
      Append(ex, DumpJson({{"progress", event}}) + "\n", /*last=*/false);
    };
  } else {
    api.progress = [](const Json&) {};
  }
  Result<Json> out = Internal("unexpected exception in request handler");
  try {
    out = route.handler(api);
  } catch (const std::exception& e) {
    VLOG(kWarning) << "handler of " << ex->method << " " << ex->url << " threw: " << e.what();
  }
  metrics_.Increment("vdswap_api_requests_total",
                     Label("route", route.pattern) + "," +
                         Label("code", std::string(CodeName(out.status().code()))));
  if (!out.ok() && out.status().code() == Code::kInternal) {
    VLOG(kWarning) << out.status().ToString();
  }
  if (ex->streaming) {
    Append(ex, (out.ok() ? DumpJson({{"result", *out}}) : ErrorBody(out.status())) + "\n",
           /*last=*/true);
    return;
  }
  if (out.ok()) {
    Finish(ex, {200, "application/json", DumpJson(*out), {}});
  } else {
    Finish(ex, ErrorReply(HttpStatusFor(out.status().code()), out.status()));
  }
}

void HttpServer::Impl::Finish(const std::shared_ptr<Exchange>& ex, Reply reply) {
  std::lock_guard lock(mu_);
  ex->reply = std::move(reply);
  ex->stage = Exchange::Stage::kDone;
  in_flight_.erase(ex);
  if (ex->suspended) {
    ex->suspended = false;
    MHD_resume_connection(ex->connection);
  }
}

void HttpServer::Impl::Append(const std::shared_ptr<Exchange>& ex, const std::string& bytes,
                              bool last) {
  std::lock_guard lock(mu_);
  ex->pending += bytes;
  if (last) {
    ex->stage = Exchange::Stage::kDone;
    in_flight_.erase(ex);
  }
  // A suspended connection is never closed by the event thread, so it is still there.
  if (ex->suspended) {
    ex->suspended = false;
    MHD_resume_connection(ex->connection);
  }
}

ssize_t HttpServer::Impl::ReadStream(void* cls, uint64_t /*pos*/, char* buf, size_t max) {
  const auto& ex = *static_cast<std::shared_ptr<Exchange>*>(cls);
  Impl& self = *ex->owner;
  std::lock_guard lock(self.mu_);
  if (!ex->pending.empty()) {
    size_t n = std::min(max, ex->pending.size());
    ex->pending.copy(buf, n);  // a block of the stream, not a C string
    ex->pending.erase(0, n);
    return static_cast<ssize_t>(n);
  }
  if (ex->stage == Exchange::Stage::kDone) return MHD_CONTENT_READER_END_OF_STREAM;
  ex->suspended = true;
  MHD_suspend_connection(ex->connection);
  return 0;
}

void HttpServer::Impl::FreeStream(void* cls) {
  delete static_cast<std::shared_ptr<Exchange>*>(cls);
}

void HttpServer::Impl::WatchHangups() {
  std::unique_lock lock(mu_);
  std::vector<pollfd> fds;
  std::vector<Exchange*> owners;
  while (!watcher_stop_) {
    // Only suspended connections: the event thread neither reads them nor closes them, so
    // their fds stay valid while mu_ is held, and a hang-up shows only here.
    fds.clear();
    owners.clear();
    for (const auto& ex : in_flight_) {
      if (!ex->suspended || ex->fd < 0) continue;
      fds.push_back({ex->fd, POLLRDHUP, 0});
      owners.push_back(ex.get());
    }
    if (!fds.empty() && ::poll(fds.data(), fds.size(), 0) > 0) {
      for (size_t i = 0; i < fds.size(); ++i) {
        if ((fds[i].revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0) owners[i]->cancelled = true;
      }
    }
    watcher_cv_.wait_for(lock, kHangupCheck, [this] { return watcher_stop_; });
  }
}

int HttpStatusFor(Code code) {
  switch (code) {
    case Code::kOk:
      return 200;
    case Code::kInvalidArgument:
      return 400;
    case Code::kNotFound:
      return 404;
    case Code::kAlreadyExists:
    case Code::kFailedPrecondition:
      return 409;
    case Code::kUnavailable:
      return 503;
    case Code::kInternal:
      return 500;
  }
  return 500;
}

HttpServer::HttpServer(const Router& router, Metrics& metrics, HttpLimits limits)
    : impl_(std::make_unique<Impl>(router, metrics, limits)) {}

HttpServer::~HttpServer() { Stop(); }

Status HttpServer::ListenUnix(const std::string& path) {
  sockaddr_un addr{};
  if (path.size() >= sizeof addr.sun_path) return InvalidArgument("socket path too long");
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size());
  ::unlink(path.c_str());
  ASSIGN_OR_RETURN(int fd,
                   ListenOn(reinterpret_cast<sockaddr*>(&addr), sizeof addr, "'" + path + "'"));
  return impl_->Serve(fd, nullptr, path);
}

Status HttpServer::ListenTcp(const std::string& addr, int port, TokenAuth auth) {
  const std::string what = addr + ":" + std::to_string(port);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  if (int rc = ::getaddrinfo(addr.c_str(), std::to_string(port).c_str(), &hints, &found); rc != 0) {
    return InvalidArgument("cannot resolve listen address '" + addr + "': " + gai_strerror(rc));
  }
  Result<int> fd = ListenOn(found->ai_addr, found->ai_addrlen, what);
  ::freeaddrinfo(found);
  if (!fd.ok()) return fd.status();
  return impl_->Serve(*fd, std::make_unique<TokenAuth>(std::move(auth)), "");
}

void HttpServer::Stop() { impl_->Stop(); }

}  // namespace vdswap
