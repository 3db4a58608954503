#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace vdswap {

// Prometheus counters and scrape-time gauges. Thread-safe.
class Metrics {
 public:
  // A gauge family computed at scrape time: returns (labels, value) pairs, where labels
  // is already rendered (`state="running"`) or empty.
  using GaugeFn = std::function<std::vector<std::pair<std::string, double>>()>;

  // Adds `delta` to counter `name` with rendered `labels` (may be empty).
  void Increment(const std::string& name, const std::string& labels = "", double delta = 1);
  // Declares a counter's help text (once, before Render shows it).
  void DescribeCounter(const std::string& name, const std::string& help);
  void AddGauge(const std::string& name, const std::string& help, GaugeFn fn);

  // The text exposition format, version 0.0.4.
  std::string Render() const;

 private:
  struct Gauge {
    std::string help;
    GaugeFn fn;
  };
  mutable std::mutex mu_;
  std::map<std::string, std::string> counter_help_;
  std::map<std::string, std::map<std::string, double>> counters_;
  std::map<std::string, Gauge> gauges_;
};

// Renders one label pair, escaping the value: Label("vm", "web-1") == `vm="web-1"`.
std::string Label(const std::string& key, const std::string& value);

}  // namespace vdswap
