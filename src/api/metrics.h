#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "rollout/rollout_engine.h"

namespace vdswap {

// Prometheus counters, histograms and scrape-time gauges. Thread-safe.
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
  // Declares histogram `name` with the upper bounds of its buckets (ascending; +Inf is
  // implied). REQUIRES: before the first Observe of `name`.
  void DescribeHistogram(const std::string& name, const std::string& help,
                         std::vector<double> bounds);
  // Counts `value` into histogram `name` (declared) with rendered `labels`.
  void Observe(const std::string& name, const std::string& labels, double value);

  // The text exposition format, version 0.0.4.
  std::string Render() const;

 private:
  struct Gauge {
    std::string help;
    GaugeFn fn;
  };
  struct Histogram {
    std::string help;
    std::vector<double> bounds;
    struct Series {
      std::vector<uint64_t> buckets;  // per bound, not cumulative
      uint64_t count = 0;
      double sum = 0;
    };
    std::map<std::string, Series> series;  // by labels
  };
  mutable std::mutex mu_;
  std::map<std::string, Histogram> histograms_;
  std::map<std::string, std::string> counter_help_;
  std::map<std::string, std::map<std::string, double>> counters_;
  std::map<std::string, Gauge> gauges_;
};

// Feeds a RolloutEngine's reports into `metrics`: vdswap_rollouts_started_total,
// vdswap_rollouts_ended_total{state}, vdswap_swaps_total{result,order} (order is
// make-before-break, break-before-make or reboot for an OS swap) and the histogram
// vdswap_swap_downtime_seconds{order} of the downtimes measured (50 ms to 60 s).
class RolloutMetrics : public RolloutObserver {
 public:
  // `default_order`: what a rollout without --swap-order uses (vdswapd --swap-order).
  RolloutMetrics(Metrics& metrics, SwapOrder default_order);
  void RolloutStarted() override;
  void RolloutEnded(RolloutState state) override;
  void SwapEnded(SwapResult result, bool os_swap, std::optional<SwapOrder> order,
                 int64_t downtime_ms) override;

 private:
  Metrics& metrics_;
  SwapOrder default_order_;
};

// Renders one label pair, escaping the value: Label("vm", "web-1") == `vm="web-1"`.
std::string Label(const std::string& key, const std::string& value);

}  // namespace vdswap
