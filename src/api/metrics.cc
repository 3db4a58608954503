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
  for (const auto& [name, gauge] : gauges_) {
    out << "# HELP " << name << ' ' << gauge.help << '\n' << "# TYPE " << name << " gauge\n";
    for (const auto& [labels, value] : gauge.fn()) Sample(out, name, labels, value);
  }
  return out.str();
}

}  // namespace vdswap
