#pragma once

#include <sstream>
#include <string_view>

namespace vdswap {

enum class LogLevel { kDebug, kInfo, kWarning, kError };

// Messages below this level are dropped. Set once at startup, before threads start.
void SetLogLevel(LogLevel level);
// Parses "debug|info|warning|error"; returns false on anything else.
bool ParseLogLevel(std::string_view name, LogLevel* level);

// One log line, written to stderr in a single write when destroyed. Thread-safe.
class LogMessage {
 public:
  LogMessage(LogLevel level, const char* file, int line);
  ~LogMessage();
  std::ostream& stream() { return out_; }

 private:
  LogLevel level_;
  std::ostringstream out_;
};

}  // namespace vdswap

#define VLOG(level) ::vdswap::LogMessage(::vdswap::LogLevel::level, __FILE__, __LINE__).stream()
