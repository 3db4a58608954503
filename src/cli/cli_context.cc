#include "cli/cli_context.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>

#include "core/files.h"

namespace vdswap {

int ExitCodeFor(const Status& status) {
  switch (status.code()) {
    case Code::kOk:
      return 0;
    case Code::kInvalidArgument:
      return 2;
    case Code::kNotFound:
      return 3;
    case Code::kAlreadyExists:
    case Code::kFailedPrecondition:
      return 4;
    case Code::kUnavailable:
      return 5;
    case Code::kInternal:
      return 1;
  }
  return 1;
}

Result<ApiClient::Endpoint> CliContext::ResolveEndpoint() const {
  ApiClient::Endpoint ep;
  if (!url.empty()) {
    ep.url = url;
    if (token_file.empty()) return InvalidArgument("--url requires --token-file");
    ASSIGN_OR_RETURN(std::string token, ReadFile(token_file));
    while (!token.empty() && isspace(static_cast<unsigned char>(token.back()))) token.pop_back();
    ep.token = token;
    return ep;
  }
  ep.socket_path = socket;
  if (ep.socket_path.empty()) {
    const char* env = std::getenv("VDSWAP_SOCKET");
    ep.socket_path = env ? env : "/var/lib/vdswap/vdswapd.sock";
  }
  return ep;
}

Result<Json> CliContext::Call(Method method, const std::string& path, const Json& body,
                              bool show_progress) {
  ProgressFn progress;
  if (show_progress) {
    progress = [](const Json& event) {
      std::cerr << "  " << event.value("message", DumpJson(event)) << std::endl;
    };
  }
  return CallStreaming(method, path, body, progress);
}

Result<Json> CliContext::CallStreaming(Method method, const std::string& path, const Json& body,
                                       const ProgressFn& events) {
  auto ep = ResolveEndpoint();
  if (!ep.ok()) {
    Fail(ep.status());
    return ep.status();
  }
  ApiClient client(*ep);
  Result<Json> out = client.Call(method, path, body, events);
  if (!out.ok()) {
    Fail(out.status());
    if (client.last_http_status() == 401) exit_code = kExitUnauthorized;
  }
  return out;
}

void CliContext::Fail(const Status& status) {
  std::cerr << "vdswap: " << status.message() << "\n";
  exit_code = ExitCodeFor(status);
  error_ = status;
}

void CliContext::PrintErrorDocument() const {
  if (!json() || exit_code == 0 || !error_) return;
  PrintJson({{"error",
              {{"code", std::string(CodeName(error_->code()))}, {"message", error_->message()}}}});
}

void CliContext::PrintJson(const Json& j) { std::cout << DumpJson(j, 2) << "\n"; }

void CliContext::PrintTable(const Json& rows,
                            const std::vector<std::pair<std::string, std::string>>& columns) {
  auto cell = [](const Json& row, const std::string& key) -> std::string {
    const Json* v = &row;
    size_t start = 0;
    // "app.version" walks into nested objects.
    while (true) {
      size_t dot = key.find('.', start);
      std::string part = key.substr(start, dot == std::string::npos ? dot : dot - start);
      if (!v->is_object() || !v->contains(part)) return "-";
      v = &(*v)[part];
      if (dot == std::string::npos) break;
      start = dot + 1;
    }
    if (v->is_string()) return v->get<std::string>();
    if (v->is_null()) return "-";
    return DumpJson(*v);
  };
  std::vector<size_t> width;
  for (const auto& [header, key] : columns) width.push_back(header.size());
  for (const auto& row : rows) {
    for (size_t i = 0; i < columns.size(); ++i) {
      width[i] = std::max(width[i], cell(row, columns[i].second).size());
    }
  }
  auto line = [&](auto get) {
    std::string out;
    for (size_t i = 0; i < columns.size(); ++i) {
      std::string c = get(i);
      out += c;
      if (i + 1 < columns.size()) out += std::string(width[i] - c.size() + 2, ' ');
    }
    std::cout << out << "\n";
  };
  line([&](size_t i) { return columns[i].first; });
  for (const auto& row : rows) line([&](size_t i) { return cell(row, columns[i].second); });
}

std::string AbsolutePath(const std::string& path) {
  std::error_code ec;
  auto abs = std::filesystem::absolute(path, ec);
  return ec ? path : abs.lexically_normal().string();
}

std::string UrlSegment(const std::string& s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == ':') {
      out.push_back(static_cast<char>(c));
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

}  // namespace vdswap
