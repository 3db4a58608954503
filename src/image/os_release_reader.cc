#include "image/os_release_reader.h"

#include <vector>

#include "core/json.h"

namespace vdswap {

namespace {

constexpr auto kToolTimeout = std::chrono::seconds(60);
// An os-release file and a partition table print in a few KiB; an image may hold a
// sparse 100 GiB /etc/os-release, which is cut off here (and then read as none).
constexpr size_t kMaxToolOutput = size_t{1} << 20;

// The os-release of the ext2/3/4 filesystem debugfs finds at `device` ("" when none).
OsRelease ReadFrom(CommandRunner& runner, const std::string& device) {
  for (const char* path : {"/etc/os-release", "/usr/lib/os-release"}) {
    RunOptions options;
    options.timeout = kToolTimeout;
    options.max_output = kMaxToolOutput;
    auto out = runner.Run({"debugfs", "-R", std::string("cat ") + path, device}, options);
    if (!out.ok() || out->exit_code != 0) return {};
    OsRelease fields = ParseOsRelease(out->out);
    if (fields.count("ID")) return fields;
  }
  return {};
}

struct Partition {
  int number = 0;
  uint64_t offset = 0;  // bytes
};

// The partitions of `disk`'s MBR or GPT table, in table order ("" when it has none).
std::vector<Partition> Partitions(CommandRunner& runner, const std::string& disk) {
  RunOptions options;
  options.timeout = kToolTimeout;
  options.max_output = kMaxToolOutput;
  auto out = runner.Run({"sfdisk", "--json", "--", disk}, options);
  if (!out.ok() || out->exit_code != 0) return {};
  auto table = ParseJson(out->out, "sfdisk --json");
  if (!table.ok() || !table->is_object()) return {};
  const Json pt = table->value("partitiontable", Json::object());
  if (!pt.is_object()) return {};
  const uint64_t sector = pt.value("sectorsize", uint64_t{512});
  std::vector<Partition> parts;
  const Json list = pt.value("partitions", Json::array());
  if (!list.is_array()) return {};
  for (size_t i = 0; i < list.size() && parts.size() < kMaxPartitionsTried; ++i) {
    if (!list[i].is_object() || !list[i].value("start", Json()).is_number_unsigned()) continue;
    parts.push_back({static_cast<int>(i + 1), list[i]["start"].get<uint64_t>() * sector});
  }
  return parts;
}

}  // namespace

OsReleaseProbe ReadOsRelease(CommandRunner& runner, const std::string& disk) {
  OsReleaseProbe probe;
  probe.fields = ReadFrom(runner, disk);
  if (!probe.fields.empty()) {
    probe.found_in = "the whole disk";
    return probe;
  }
  std::string tried = "the whole disk";
  for (const Partition& p : Partitions(runner, disk)) {
    probe.fields = ReadFrom(runner, disk + "?offset=" + std::to_string(p.offset));
    if (!probe.fields.empty()) {
      probe.found_in = "partition " + std::to_string(p.number);
      return probe;
    }
    tried += ", partition " + std::to_string(p.number);
  }
  probe.not_found =
      "no ext2/3/4 filesystem with /etc/os-release or /usr/lib/os-release (tried " + tried + ")";
  return probe;
}

}  // namespace vdswap
