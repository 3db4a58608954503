#include "api/api_client.h"

#include <httplib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <charconv>
#include <cstring>

namespace vdswap {

namespace {

constexpr time_t kReadTimeoutSec = 3600;  // long operations stream progress meanwhile

// httplib 0.11 connects over TCP only; this client connects its socket to a unix path.
class UnixClient : public httplib::ClientImpl {
 public:
  explicit UnixClient(std::string path) : ClientImpl("localhost", 80), path_(std::move(path)) {}

 protected:
  bool create_and_connect_socket(Socket& socket, httplib::Error& error) override {
    sockaddr_un addr{};
    if (path_.size() >= sizeof addr.sun_path) {
      error = httplib::Error::Connection;
      return false;
    }
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path_.c_str(), path_.size());
    if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      if (fd >= 0) ::close(fd);
      error = httplib::Error::Connection;
      return false;
    }
    socket.sock = fd;
    return true;
  }

 private:
  std::string path_;
};

Status ErrorFrom(const Json& j, int http_status) {
  if (j.is_object() && j.contains("error") && j["error"].is_object()) {
    Code code = CodeFromName(j["error"].value("code", "internal"));
    if (code == Code::kUnavailable) code = Code::kInternal;
    return Status(code, j["error"].value("message", "unknown error"));
  }
  return Internal("daemon answered HTTP " + std::to_string(http_status));
}

// "http://host:port" -> (host, port).
Result<std::pair<std::string, int>> SplitUrl(const std::string& url) {
  constexpr std::string_view kScheme = "http://";
  std::string rest = url.rfind(kScheme, 0) == 0 ? url.substr(kScheme.size()) : url;
  while (!rest.empty() && rest.back() == '/') rest.pop_back();
  auto colon = rest.rfind(':');
  int port = 0;
  if (colon == std::string::npos || colon == 0 ||
      std::from_chars(rest.data() + colon + 1, rest.data() + rest.size(), port).ec != std::errc() ||
      port <= 0 || port > 65535) {
    return InvalidArgument("url '" + url + "' is not http://HOST:PORT");
  }
  return std::make_pair(rest.substr(0, colon), port);
}

}  // namespace

ApiClient::ApiClient(Endpoint endpoint) : endpoint_(std::move(endpoint)) {}
ApiClient::~ApiClient() = default;

std::string ApiClient::Describe() const {
  return endpoint_.url.empty() ? "unix:" + endpoint_.socket_path : endpoint_.url;
}

Result<Json> ApiClient::Call(Method method, const std::string& path, const Json& body,
                             const ProgressFn& progress) {
  std::unique_ptr<httplib::ClientImpl> cli;
  httplib::Headers headers;
  if (endpoint_.url.empty()) {
    cli = std::make_unique<UnixClient>(endpoint_.socket_path);
  } else {
    ASSIGN_OR_RETURN(auto host_port, SplitUrl(endpoint_.url));
    cli = std::make_unique<httplib::ClientImpl>(host_port.first, host_port.second);
    if (!endpoint_.token.empty()) headers.emplace("Authorization", "Bearer " + endpoint_.token);
  }
  cli->set_connection_timeout(5, 0);
  cli->set_read_timeout(kReadTimeoutSec, 0);
  if (progress) headers.emplace("Accept", "application/x-ndjson");

  std::string stream;  // ndjson lines not yet complete
  Json final_line;
  auto receiver = [&](const char* data, size_t len) {
    stream.append(data, len);
    size_t nl;
    while ((nl = stream.find('\n')) != std::string::npos) {
      auto line = ParseJson(std::string_view(stream).substr(0, nl), "stream line");
      stream.erase(0, nl + 1);
      if (!line.ok()) continue;
      if (line->contains("progress")) {
        progress((*line)["progress"]);
      } else {
        final_line = std::move(*line);
      }
    }
    return true;
  };

  std::string payload = body.is_null() ? "" : DumpJson(body);
  httplib::Result res{nullptr, httplib::Error::Unknown};
  switch (method) {
    case Method::kGet:
      res = progress ? cli->Get(path, headers, receiver) : cli->Get(path, headers);
      break;
    case Method::kPost:
      if (progress) {
        httplib::Request req;
        req.method = "POST";
        req.path = path;
        req.headers = headers;
        req.body = payload;
        req.set_header("Content-Type", "application/json");
        req.content_receiver = [&](const char* d, size_t n, uint64_t, uint64_t) {
          return receiver(d, n);
        };
        res = cli->send(req);
      } else {
        res = cli->Post(path, headers, payload, "application/json");
      }
      break;
    case Method::kDelete:
      res = cli->Delete(path, headers, payload, "application/json");
      break;
  }
  if (!res) {
    return Unavailable("cannot reach vdswapd at " + Describe() + " (" +
                       httplib::to_string(res.error()) +
                       "); start it with `vdswapd` (see vdswapd --help)");
  }
  last_http_status_ = res->status;
  if (progress && res->status == 200) {
    if (final_line.contains("result")) return final_line["result"];
    if (final_line.contains("error")) return ErrorFrom(final_line, 200);
    return Internal("daemon closed the stream without a result");
  }
  auto parsed = ParseJson(res->body, "daemon reply");
  if (res->status >= 200 && res->status < 300) {
    if (!parsed.ok()) return Internal("daemon sent a reply that is not JSON");
    return std::move(*parsed);
  }
  return ErrorFrom(parsed.ok() ? *parsed : Json(), res->status);
}

}  // namespace vdswap
