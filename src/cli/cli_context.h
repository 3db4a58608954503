#pragma once

#include <CLI/CLI.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "api/api_client.h"
#include "core/json.h"
#include "core/status.h"

namespace vdswap {

// The exit code contract of docs/api.md: 0 ok, 1 failed, 2 invalid input, 3 not found,
// 4 conflict or failed precondition, 5 daemon unreachable; and 6 unauthorized (the
// daemon refused the bearer token), which Call sets itself.
int ExitCodeFor(const Status& status);
constexpr int kExitUnauthorized = 6;

// State shared by every CLI command: the global flags, the daemon client and output.
// Commands run one at a time on the main thread.
class CliContext {
 public:
  std::string socket;
  std::string url;
  std::string token_file;
  std::string output = "table";
  int exit_code = 0;

  bool json() const { return output == "json"; }

  // Calls the daemon; on failure prints the error to stderr and sets exit_code.
  // With show_progress, long operations report progress on stderr.
  Result<Json> Call(Method method, const std::string& path, const Json& body = nullptr,
                    bool show_progress = false);
  // Like Call, handing each event the daemon streams to `events` as it arrives.
  Result<Json> CallStreaming(Method method, const std::string& path, const Json& body,
                             const ProgressFn& events);

  // Prints `j` as JSON (-o json), or runs `table` to print it for people.
  template <typename F>
  void Print(const Json& j, F table) {
    if (json()) {
      PrintJson(j);
    } else {
      table();
    }
  }
  static void PrintJson(const Json& j);
  // Prints rows (array of objects) under headers; `columns` is (HEADER, key).
  static void PrintTable(const Json& rows,
                         const std::vector<std::pair<std::string, std::string>>& columns);

  // Reports a failure on stderr and sets exit_code from it.
  void Fail(const Status& status);
  // With -o json, when the command ended on a failure it reported, prints that failure as
  // the command's one document: {"error": {"code", "message"}} (docs/api.md).
  void PrintErrorDocument() const;

 private:
  std::optional<Status> error_;
  Result<ApiClient::Endpoint> ResolveEndpoint() const;
};

// Makes `path` absolute, since the daemon resolves paths from its own working directory.
std::string AbsolutePath(const std::string& path);

// Percent-encodes a path segment (names are validated server-side; this keeps URLs sane).
std::string UrlSegment(const std::string& s);

}  // namespace vdswap
