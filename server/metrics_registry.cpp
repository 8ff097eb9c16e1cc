#include "server/metrics_registry.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <stdexcept>

namespace pagedserve {
namespace {

std::string escape(const std::string& text, bool escape_quotes) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '"' && escape_quotes) {
      out += "\\\"";
    } else {
      out += c;
    }
  }
  return out;
}

// {a="x",b="y"} with an optional extra label (le) last; empty when there are no labels.
std::string label_text(const MetricLabels& labels, const std::string& extra_name = {},
                       const std::string& extra_value = {}) {
  if (labels.empty() && extra_name.empty()) return {};
  std::string out = "{";
  bool first = true;
  auto add = [&](const std::string& name, const std::string& value) {
    if (!first) out += ',';
    first = false;
    out += name + "=\"" + escape(value, true) + "\"";
  };
  for (const auto& [name, value] : labels) add(name, value);
  if (!extra_name.empty()) add(extra_name, extra_value);
  out += '}';
  return out;
}

}  // namespace

void Counter::advance_to(double total) {
  double current = value_.load(std::memory_order_relaxed);
  while (total > current && !value_.compare_exchange_weak(current, total, std::memory_order_relaxed)) {
  }
}

Histogram::Histogram(std::vector<double> upper_bounds)
    : upper_bounds_(std::move(upper_bounds)), bucket_counts_(upper_bounds_.size() + 1, 0) {
  if (!std::is_sorted(upper_bounds_.begin(), upper_bounds_.end()) ||
      std::adjacent_find(upper_bounds_.begin(), upper_bounds_.end()) != upper_bounds_.end()) {
    throw std::logic_error("histogram buckets must be strictly increasing");
  }
}

void Histogram::observe(double value) {
  // Prometheus buckets are inclusive upper bounds: value <= le.
  std::size_t bucket =
      std::lower_bound(upper_bounds_.begin(), upper_bounds_.end(), value) - upper_bounds_.begin();
  std::lock_guard lock(mutex_);
  ++bucket_counts_[bucket];
  sum_ += value;
  ++count_;
}

Histogram::Snapshot Histogram::snapshot() const {
  Snapshot snap;
  snap.upper_bounds = upper_bounds_;
  std::lock_guard lock(mutex_);
  std::uint64_t running = 0;
  for (std::uint64_t c : bucket_counts_) snap.cumulative_counts.push_back(running += c);
  snap.sum = sum_;
  snap.count = count_;
  return snap;
}

MetricsRegistry::Series& MetricsRegistry::series(const std::string& name, const std::string& help, Type type,
                                                 const MetricLabels& labels,
                                                 const std::vector<double>* upper_bounds) {
  std::lock_guard lock(mutex_);
  Family* family = nullptr;
  if (auto it = by_name_.find(name); it != by_name_.end()) {
    family = it->second;
    if (family->type != type) throw std::logic_error("metric " + name + " registered with another type");
  } else {
    families_.push_back(std::make_unique<Family>(Family{name, help, type, {}}));
    family = families_.back().get();
    by_name_[name] = family;
  }
  for (auto& s : family->series) {
    if (s->labels == labels) return *s;
  }
  auto s = std::make_unique<Series>();
  s->labels = labels;
  switch (type) {
    case Type::counter:
      s->counter = std::make_unique<Counter>();
      break;
    case Type::gauge:
      s->gauge = std::make_unique<Gauge>();
      break;
    case Type::histogram:
      s->histogram = std::make_unique<Histogram>(*upper_bounds);
      break;
  }
  family->series.push_back(std::move(s));
  return *family->series.back();
}

Counter& MetricsRegistry::counter(const std::string& name, const std::string& help,
                                  const MetricLabels& labels) {
  return *series(name, help, Type::counter, labels, nullptr).counter;
}

Gauge& MetricsRegistry::gauge(const std::string& name, const std::string& help, const MetricLabels& labels) {
  return *series(name, help, Type::gauge, labels, nullptr).gauge;
}

Histogram& MetricsRegistry::histogram(const std::string& name, const std::string& help,
                                      const std::vector<double>& upper_bounds, const MetricLabels& labels) {
  return *series(name, help, Type::histogram, labels, &upper_bounds).histogram;
}

std::string MetricsRegistry::exposition() const {
  std::lock_guard lock(mutex_);
  std::string out;
  for (const auto& family : families_) {
    static const char* type_names[] = {"counter", "gauge", "histogram"};
    out += "# HELP " + family->name + " " + escape(family->help, false) + "\n";
    out += "# TYPE " + family->name + " " + type_names[static_cast<int>(family->type)] + "\n";
    for (const auto& s : family->series) {
      if (s->counter) {
        out += family->name + label_text(s->labels) + " " + format_metric_value(s->counter->value()) + "\n";
      } else if (s->gauge) {
        out += family->name + label_text(s->labels) + " " + format_metric_value(s->gauge->value()) + "\n";
      } else {
        Histogram::Snapshot snap = s->histogram->snapshot();
        for (std::size_t i = 0; i <= snap.upper_bounds.size(); ++i) {
          double le = i < snap.upper_bounds.size() ? snap.upper_bounds[i] : INFINITY;
          out += family->name + "_bucket" + label_text(s->labels, "le", format_metric_value(le)) + " " +
                 std::to_string(snap.cumulative_counts[i]) + "\n";
        }
        out += family->name + "_sum" + label_text(s->labels) + " " + format_metric_value(snap.sum) + "\n";
        out += family->name + "_count" + label_text(s->labels) + " " + std::to_string(snap.count) + "\n";
      }
    }
  }
  return out;
}

std::string format_metric_value(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char buffer[64];
  auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, value);
  (void)ec;  // 64 characters always hold a shortest round-trip double
  return std::string(buffer, end);
}

}  // namespace pagedserve
