#include "core/log.h"

#include <unistd.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <cstring>
#include <ctime>
#include <optional>
#include <utility>

#include "core/enum_names.h"

namespace vdswap {

namespace {
std::atomic<LogLevel> g_min_level{LogLevel::kInfo};

constexpr EnumNames<LogLevel, 4> kLevels = {{
    {LogLevel::kDebug, "debug"},
    {LogLevel::kInfo, "info"},
    {LogLevel::kWarning, "warning"},
    {LogLevel::kError, "error"},
}};

// The level's letter in a log line: "D", "I", "W", "E".
char LevelLetter(LogLevel l) {
  return static_cast<char>(std::toupper(static_cast<unsigned char>(NameOf(kLevels, l)[0])));
}
}  // namespace

void SetLogLevel(LogLevel level) { g_min_level = level; }

bool ParseLogLevel(std::string_view name, LogLevel* level) {
  std::optional<LogLevel> found = FindValue(kLevels, name);
  if (found) *level = *found;
  return found.has_value();
}

LogMessage::LogMessage(LogLevel level, const char* file, int line) : level_(level) {
  if (level_ < g_min_level.load()) return;
  auto now = std::chrono::system_clock::now();
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()) % 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char ts[32];
  std::strftime(ts, sizeof ts, "%H:%M:%S", &tm);
  const char* base = std::strrchr(file, '/');
  out_ << LevelLetter(level_) << " " << ts << "." << ms.count() / 100 << ms.count() / 10 % 10
       << ms.count() % 10 << " " << (base ? base + 1 : file) << ":" << line << "] ";
}

LogMessage::~LogMessage() {
  if (level_ < g_min_level.load()) return;
  out_ << '\n';
  std::string s = out_.str();
  ssize_t ignored = write(STDERR_FILENO, s.data(), s.size());
  (void)ignored;
}

}  // namespace vdswap
