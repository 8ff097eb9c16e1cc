// A small Prometheus metrics registry: counters, gauges and fixed-bucket histograms with labels, and
// the text exposition format 0.0.4 (no C++ Prometheus client is packaged on Debian).
//
// Threads: every method may be called from any thread. Series returned by counter()/gauge()/
// histogram() live as long as the registry; keep the reference and update it lock-free (counters,
// gauges) or under the histogram's own mutex.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace pagedserve {

using MetricLabels = std::vector<std::pair<std::string, std::string>>;  // name, value; in order

class Counter {
 public:
  void inc(double amount = 1.0) { value_.fetch_add(amount, std::memory_order_relaxed); }
  // For counters mirrored from a cumulative source (engine totals): never goes backwards.
  void advance_to(double total);
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

class Gauge {
 public:
  void set(double value) { value_.store(value, std::memory_order_relaxed); }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);  // strictly increasing; +Inf is implicit

  void observe(double value);

  struct Snapshot {
    std::vector<double> upper_bounds;
    std::vector<std::uint64_t> cumulative_counts;  // [upper_bounds.size() + 1], last = +Inf = count
    double sum = 0.0;
    std::uint64_t count = 0;
  };
  Snapshot snapshot() const;

 private:
  const std::vector<double> upper_bounds_;
  mutable std::mutex mutex_;
  std::vector<std::uint64_t> bucket_counts_;  // [upper_bounds.size() + 1], not cumulative
  double sum_ = 0.0;
  std::uint64_t count_ = 0;
};

class MetricsRegistry {
 public:
  // Get-or-create the series `name{labels}`. A family's type, help and buckets are fixed by its
  // first registration; asking for the same name with another type throws std::logic_error
  // (a programming error, found by the first test that touches it).
  Counter& counter(const std::string& name, const std::string& help, const MetricLabels& labels = {});
  Gauge& gauge(const std::string& name, const std::string& help, const MetricLabels& labels = {});
  Histogram& histogram(const std::string& name, const std::string& help,
                       const std::vector<double>& upper_bounds, const MetricLabels& labels = {});

  // Text exposition format 0.0.4, families in registration order.
  std::string exposition() const;

 private:
  enum class Type { counter, gauge, histogram };
  struct Series {
    MetricLabels labels;
    std::unique_ptr<Counter> counter;
    std::unique_ptr<Gauge> gauge;
    std::unique_ptr<Histogram> histogram;
  };
  struct Family {
    std::string name;
    std::string help;
    Type type;
    std::vector<std::unique_ptr<Series>> series;
  };
  Series& series(const std::string& name, const std::string& help, Type type, const MetricLabels& labels,
                 const std::vector<double>* upper_bounds);

  mutable std::mutex mutex_;
  std::vector<std::unique_ptr<Family>> families_;
  std::map<std::string, Family*> by_name_;
};

// Prometheus number formatting: shortest round-trip decimal, "+Inf", "-Inf", "NaN".
std::string format_metric_value(double value);

}  // namespace pagedserve
