#include "api/metrics.h"

#include <sstream>

namespace vdswap {

namespace {
void Sample(std::ostringstream& out, const std::string& name, const std::string& labels,
            double value) {
  out << name;
  if (!labels.empty()) out << '{' << labels << '}';
  out << ' ' << value << '\n';
}
}  // namespace

std::string Label(const std::string& key, const std::string& value) {
  std::string escaped;
  for (char c : value) {
    if (c == '\\' || c == '"') escaped.push_back('\\');
    if (c == '\n') {
      escaped += "\\n";
      continue;
    }
    escaped.push_back(c);
  }
  return key + "=\"" + escaped + "\"";
}

void Metrics::Increment(const std::string& name, const std::string& labels, double delta) {
  std::lock_guard lock(mu_);
  counters_[name][labels] += delta;
}

void Metrics::DescribeCounter(const std::string& name, const std::string& help) {
  std::lock_guard lock(mu_);
  counter_help_[name] = help;
  counters_[name];
}

void Metrics::DescribeHistogram(const std::string& name, const std::string& help,
                                std::vector<double> bounds) {
  std::lock_guard lock(mu_);
  histograms_[name] = Histogram{help, std::move(bounds), {}};
}

void Metrics::Observe(const std::string& name, const std::string& labels, double value) {
  std::lock_guard lock(mu_);
  Histogram& h = histograms_[name];
  Histogram::Series& series = h.series[labels];
  series.buckets.resize(h.bounds.size());
  for (size_t i = 0; i < h.bounds.size(); ++i) {
    if (value <= h.bounds[i]) {
      ++series.buckets[i];
      break;
    }
  }
  ++series.count;
  series.sum += value;
}

void Metrics::AddGauge(const std::string& name, const std::string& help, GaugeFn fn) {
  std::lock_guard lock(mu_);
  gauges_[name] = Gauge{help, std::move(fn)};
}

std::string Metrics::Render() const {
  std::lock_guard lock(mu_);
  std::ostringstream out;
  for (const auto& [name, samples] : counters_) {
    auto help = counter_help_.find(name);
    if (help != counter_help_.end()) out << "# HELP " << name << ' ' << help->second << '\n';
    out << "# TYPE " << name << " counter\n";
    for (const auto& [labels, value] : samples) Sample(out, name, labels, value);
  }
  for (const auto& [name, h] : histograms_) {
    out << "# HELP " << name << ' ' << h.help << '\n' << "# TYPE " << name << " histogram\n";
    for (const auto& [labels, series] : h.series) {
      const std::string sep = labels.empty() ? "" : ",";
      uint64_t cumulative = 0;
      for (size_t i = 0; i < h.bounds.size(); ++i) {
        cumulative += series.buckets[i];
        std::ostringstream le;
        le << h.bounds[i];
        Sample(out, name + "_bucket", labels + sep + Label("le", le.str()),
               static_cast<double>(cumulative));
      }
      Sample(out, name + "_bucket", labels + sep + Label("le", "+Inf"),
             static_cast<double>(series.count));
      Sample(out, name + "_sum", labels, series.sum);
      Sample(out, name + "_count", labels, static_cast<double>(series.count));
    }
  }
  for (const auto& [name, gauge] : gauges_) {
    out << "# HELP " << name << ' ' << gauge.help << '\n' << "# TYPE " << name << " gauge\n";
    for (const auto& [labels, value] : gauge.fn()) Sample(out, name, labels, value);
  }
  return out.str();
}

namespace {
constexpr char kStarted[] = "vdswap_rollouts_started_total";
constexpr char kEnded[] = "vdswap_rollouts_ended_total";
constexpr char kSwaps[] = "vdswap_swaps_total";
constexpr char kDowntime[] = "vdswap_swap_downtime_seconds";
}  // namespace

RolloutMetrics::RolloutMetrics(Metrics& metrics, SwapOrder default_order)
    : metrics_(metrics), default_order_(default_order) {
  metrics_.DescribeCounter(kStarted, "Rollouts started (start and undo).");
  metrics_.DescribeCounter(kEnded, "Rollouts that reached an end state, by state.");
  for (RolloutState s : {RolloutState::kSucceeded, RolloutState::kFailed, RolloutState::kRolledBack,
                         RolloutState::kAborted}) {
    metrics_.Increment(kEnded, Label("state", std::string(RolloutStateName(s))), 0);
  }
  metrics_.Increment(kStarted, "", 0);
  metrics_.DescribeCounter(kSwaps, "Swaps of rollouts, by result and order (reboot: OS swap).");
  metrics_.DescribeHistogram(kDowntime, "App downtime of the swaps of rollouts, by order.",
                             {0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60});
}

void RolloutMetrics::RolloutStarted() { metrics_.Increment(kStarted); }

void RolloutMetrics::RolloutEnded(RolloutState state) {
  metrics_.Increment(kEnded, Label("state", std::string(RolloutStateName(state))));
}

void RolloutMetrics::SwapEnded(SwapResult result, bool os_swap, std::optional<SwapOrder> order,
                               int64_t downtime_ms) {
  const std::string order_name =
      os_swap ? "reboot" : std::string(SwapOrderName(order.value_or(default_order_)));
  metrics_.Increment(kSwaps, Label("result", std::string(SwapResultName(result))) + "," +
                                 Label("order", order_name));
  if (downtime_ms >= 0) {
    metrics_.Observe(kDowntime, Label("order", order_name),
                     static_cast<double>(downtime_ms) / 1000.0);
  }
}

}  // namespace vdswap
