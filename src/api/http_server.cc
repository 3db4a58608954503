#include "api/http_server.h"

#include <httplib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include "core/log.h"

namespace vdswap {

namespace {

// httplib 0.11 listens on TCP only; it serves any listening socket placed in svr_sock_.
class UnixSocketServer : public httplib::Server {
 public:
  Status BindUnix(const std::string& path) {
    sockaddr_un addr{};
    if (path.size() >= sizeof addr.sun_path) return InvalidArgument("socket path too long");
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return Internal(std::string("socket: ") + strerror(errno));
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.c_str(), path.size());
    ::unlink(path.c_str());
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::chmod(path.c_str(), 0660) != 0 || ::listen(fd, 64) != 0) {
      std::string err = strerror(errno);
      ::close(fd);
      return Unavailable("cannot listen on '" + path + "': " + err);
    }
    svr_sock_ = fd;
    return Status::Ok();
  }
};

std::string ErrorBody(const Status& s) {
  return DumpJson({{"error", {{"code", CodeName(s.code())}, {"message", s.message()}}}});
}

}  // namespace

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

HttpServer::HttpServer(const Router& router, Metrics& metrics)
    : router_(router), metrics_(metrics) {
  metrics_.DescribeCounter("vdswap_api_requests_total", "API requests by route and status.");
}

HttpServer::~HttpServer() { Stop(); }

void HttpServer::Install(httplib::Server& server, const TokenAuth* auth) {
  if (auth != nullptr) {
    server.set_pre_routing_handler([auth](const httplib::Request& req, httplib::Response& res) {
      if (auth->Check(req.get_header_value("Authorization"))) {
        return httplib::Server::HandlerResponse::Unhandled;
      }
      res.status = 401;
      res.set_header("WWW-Authenticate", "Bearer");
      res.set_content(ErrorBody(Status(Code::kInvalidArgument, "missing or wrong bearer token")),
                      "application/json");
      return httplib::Server::HandlerResponse::Handled;
    });
  }
  server.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics_.Render(), "text/plain; version=0.0.4");
  });
  for (const auto& route : router_.routes()) {
    auto handler = [this, &route](const httplib::Request& req, httplib::Response& res) {
      ApiRequest api;
      for (size_t i = 1; i < req.matches.size(); ++i) api.params.push_back(req.matches[i]);
      for (const auto& [k, v] : req.params) api.query[k] = v;
      api.progress = [](const Json&) {};
      if (!req.body.empty()) {
        auto body = ParseJson(req.body, "request body");
        if (!body.ok() || !body->is_object()) {
          res.status = 400;
          res.set_content(ErrorBody(InvalidArgument("request body must be a JSON object")),
                          "application/json");
          return;
        }
        api.body = std::move(*body);
      }
      const std::string route_label = Label("route", route.pattern);
      if (req.get_header_value("Accept").find("application/x-ndjson") != std::string::npos) {
        res.set_chunked_content_provider(
            "application/x-ndjson",
            [this, &route, api, route_label](size_t, httplib::DataSink& sink) mutable {
              api.progress = [&sink](const Json& event) {
                std::string line = DumpJson({{"progress", event}}) + "\n";
                sink.write(line.data(), line.size());
              };
              Result<Json> out = route.handler(api);
              std::string last =
                  out.ok() ? DumpJson({{"result", *out}}) + "\n" : ErrorBody(out.status()) + "\n";
              sink.write(last.data(), last.size());
              sink.done();
              metrics_.Increment(
                  "vdswap_api_requests_total",
                  route_label + "," + Label("code", std::string(CodeName(out.status().code()))));
              return true;
            });
        return;
      }
      Result<Json> out = route.handler(api);
      metrics_.Increment(
          "vdswap_api_requests_total",
          route_label + "," + Label("code", std::string(CodeName(out.status().code()))));
      if (!out.ok()) {
        if (out.status().code() == Code::kInternal) VLOG(kWarning) << out.status().ToString();
        res.status = HttpStatusFor(out.status().code());
        res.set_content(ErrorBody(out.status()), "application/json");
        return;
      }
      res.set_content(DumpJson(*out), "application/json");
    };
    switch (route.method) {
      case Method::kGet:
        server.Get(route.pattern, handler);
        break;
      case Method::kPost:
        server.Post(route.pattern, handler);
        break;
      case Method::kDelete:
        server.Delete(route.pattern, handler);
        break;
    }
  }
  server.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (res.status == 404 && res.body.empty()) {
      res.set_content(ErrorBody(NotFound("no API route for " + req.method + " " + req.path)),
                      "application/json");
    }
  });
  server.set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, const std::exception_ptr&) {
        res.status = 500;
        res.set_content(ErrorBody(Internal("unexpected exception in request handler")),
                        "application/json");
      });
}

Status HttpServer::ListenUnix(const std::string& path) {
  auto server = std::make_unique<UnixSocketServer>();
  Install(*server, nullptr);
  RETURN_IF_ERROR(server->BindUnix(path));
  socket_paths_.push_back(path);
  threads_.emplace_back([s = server.get()] { s->listen_after_bind(); });
  servers_.push_back(std::move(server));
  return Status::Ok();
}

Status HttpServer::ListenTcp(const std::string& addr, int port, TokenAuth auth) {
  auto server = std::make_unique<httplib::Server>();
  auths_.push_back(std::make_unique<TokenAuth>(std::move(auth)));
  Install(*server, auths_.back().get());
  if (!server->bind_to_port(addr, port)) {
    return Unavailable("cannot listen on " + addr + ":" + std::to_string(port));
  }
  threads_.emplace_back([s = server.get()] { s->listen_after_bind(); });
  servers_.push_back(std::move(server));
  return Status::Ok();
}

void HttpServer::Stop() {
  for (auto& s : servers_) s->stop();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
  for (const auto& p : socket_paths_) ::unlink(p.c_str());
  socket_paths_.clear();
}

}  // namespace vdswap
