#include "server/metrics_registry.h"

#include <gtest/gtest.h>

#include <cmath>
#include <thread>
#include <vector>

namespace pagedserve {
namespace {

TEST(MetricsRegistry, CounterAndGaugeText) {
  MetricsRegistry registry;
  registry.counter("app:requests_total", "Requests.", {{"model_name", "m"}}).inc(3);
  registry.gauge("app:running", "Running now.", {{"model_name", "m"}}).set(2.5);
  EXPECT_EQ(registry.exposition(),
            "# HELP app:requests_total Requests.\n"
            "# TYPE app:requests_total counter\n"
            "app:requests_total{model_name=\"m\"} 3\n"
            "# HELP app:running Running now.\n"
            "# TYPE app:running gauge\n"
            "app:running{model_name=\"m\"} 2.5\n");
}

TEST(MetricsRegistry, HistogramBucketsAreCumulativeAndInclusive) {
  MetricsRegistry registry;
  Histogram& h = registry.histogram("lat_seconds", "Latency.", {0.1, 1.0}, {{"model_name", "m"}});
  h.observe(0.1);  // on the bound: counts in le="0.1"
  h.observe(0.5);
  h.observe(7.0);  // only +Inf
  EXPECT_EQ(registry.exposition(),
            "# HELP lat_seconds Latency.\n"
            "# TYPE lat_seconds histogram\n"
            "lat_seconds_bucket{model_name=\"m\",le=\"0.1\"} 1\n"
            "lat_seconds_bucket{model_name=\"m\",le=\"1\"} 2\n"
            "lat_seconds_bucket{model_name=\"m\",le=\"+Inf\"} 3\n"
            "lat_seconds_sum{model_name=\"m\"} 7.6\n"
            "lat_seconds_count{model_name=\"m\"} 3\n");
}

TEST(MetricsRegistry, SameSeriesIsReturnedAndLabelsEscaped) {
  MetricsRegistry registry;
  Counter& a = registry.counter("c_total", "Help with \\ and\nnewline.", {{"k", "a\"b\\c\nd"}});
  Counter& b = registry.counter("c_total", "ignored", {{"k", "a\"b\\c\nd"}});
  EXPECT_EQ(&a, &b);
  registry.counter("c_total", "", {{"k", "other"}}).inc();
  std::string text = registry.exposition();
  EXPECT_NE(text.find("# HELP c_total Help with \\\\ and\\nnewline.\n"), std::string::npos) << text;
  EXPECT_NE(text.find("c_total{k=\"a\\\"b\\\\c\\nd\"} 0\n"), std::string::npos) << text;
  EXPECT_NE(text.find("c_total{k=\"other\"} 1\n"), std::string::npos) << text;
  EXPECT_THROW(registry.gauge("c_total", ""), std::logic_error);
}

TEST(MetricsRegistry, CounterAdvanceNeverGoesBack) {
  Counter c;
  c.advance_to(10);
  c.advance_to(4);
  EXPECT_EQ(c.value(), 10);
}

TEST(MetricsRegistry, ValueFormatting) {
  EXPECT_EQ(format_metric_value(2560.0), "2560");
  EXPECT_EQ(format_metric_value(0.001), "0.001");
  EXPECT_EQ(format_metric_value(INFINITY), "+Inf");
  EXPECT_EQ(format_metric_value(-INFINITY), "-Inf");
  EXPECT_EQ(format_metric_value(NAN), "NaN");
}

TEST(MetricsRegistry, ConcurrentUpdatesAreNotLost) {
  MetricsRegistry registry;
  Counter& c = registry.counter("n_total", "n");
  Histogram& h = registry.histogram("h_seconds", "h", {1.0});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) {
        c.inc();
        h.observe(0.5);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(c.value(), 40000);
  EXPECT_EQ(h.snapshot().count, 40000u);
  EXPECT_EQ(h.snapshot().cumulative_counts[0], 40000u);
}

}  // namespace
}  // namespace pagedserve
