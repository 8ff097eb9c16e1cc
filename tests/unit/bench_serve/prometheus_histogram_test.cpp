#include "bench/serve/prometheus_histogram.h"

#include <gtest/gtest.h>

#include <cmath>

#include "bench/serve/server_metrics_delta.h"

namespace pagedserve::bench {
namespace {

// Two models' series of one family (summed), another family with a similar name (ignored), a
// label value with a space and a sample timestamp.
const char* kPage =
    R"(# HELP pagedserve_time_to_first_token_seconds Histogram of time to first token in seconds.
# TYPE pagedserve_time_to_first_token_seconds histogram
pagedserve_time_to_first_token_seconds_bucket{model_name="a",le="0.1"} 1
pagedserve_time_to_first_token_seconds_bucket{model_name="a",le="0.25"} 4
pagedserve_time_to_first_token_seconds_bucket{model_name="a",le="0.5"} 5
pagedserve_time_to_first_token_seconds_bucket{model_name="a",le="+Inf"} 5
pagedserve_time_to_first_token_seconds_bucket{model_name="b c",le="0.1"} 1 1700000000000
pagedserve_time_to_first_token_seconds_bucket{model_name="b c",le="0.25"} 2
pagedserve_time_to_first_token_seconds_bucket{model_name="b c",le="0.5"} 3
pagedserve_time_to_first_token_seconds_bucket{model_name="b c",le="+Inf"} 3
pagedserve_time_to_first_token_seconds_sum{model_name="a"} 1.0
pagedserve_time_to_first_token_seconds_count{model_name="a"} 5
other_time_to_first_token_seconds_total_bucket{le="+Inf"} 99
)";

TEST(FindHistogram, SumsLabelSetsPerBucket) {
  const Histogram h = find_histogram(kPage, "time_to_first_token_seconds");
  EXPECT_EQ(h.name, "pagedserve_time_to_first_token_seconds");
  ASSERT_EQ(h.buckets.size(), 4u);
  EXPECT_EQ(h.buckets[0].upper_bound, 0.1);
  EXPECT_EQ(h.buckets[0].count, 2);
  EXPECT_EQ(h.buckets[1].count, 6);
  EXPECT_EQ(h.buckets[2].count, 8);
  EXPECT_TRUE(std::isinf(h.buckets[3].upper_bound));
  EXPECT_EQ(histogram_count(h), 8);
}

TEST(FindHistogram, ColonPrefixedNamesAsVllmWritesThem) {
  const Histogram h = find_histogram(
      "vllm:time_per_output_token_seconds_bucket{le=\"0.05\"} 3\n"
      "vllm:time_per_output_token_seconds_bucket{le=\"+Inf\"} 4\n",
      "time_per_output_token_seconds");
  EXPECT_EQ(h.name, "vllm:time_per_output_token_seconds");
  EXPECT_EQ(histogram_count(h), 4);
  EXPECT_TRUE(find_histogram(kPage, "time_per_output_token_seconds").buckets.empty());
}

// Values worked by hand as PromQL's histogram_quantile does them.
TEST(HistogramQuantile, InterpolatesInsideTheBucket) {
  const Histogram h = find_histogram(kPage, "time_to_first_token_seconds");
  // rank 4 of 8 falls in (0.1, 0.25] holding ranks 3..6: 0.1 + 0.15 * (4 - 2) / 4.
  EXPECT_DOUBLE_EQ(histogram_quantile(0.5, h), 0.175);
  // rank 1 of 8 in the first bucket, interpolated from 0: 0.1 * 1 / 2.
  EXPECT_DOUBLE_EQ(histogram_quantile(0.125, h), 0.05);
  EXPECT_DOUBLE_EQ(histogram_quantile(1.0, h), 0.5);
}

TEST(HistogramQuantile, InfBucketGivesTheLastFiniteBoundAndEmptyIsNaN) {
  Histogram h{"x", {{1.0, 1}, {2.0, 1}, {INFINITY, 10}}};
  EXPECT_EQ(histogram_quantile(0.5, h), 2.0);
  EXPECT_TRUE(std::isnan(histogram_quantile(0.5, Histogram{"x", {{1.0, 0}, {INFINITY, 0}}})));
  EXPECT_TRUE(std::isnan(histogram_quantile(0.5, Histogram{})));
}

TEST(HistogramDelta, OnlyWhatTheRunAdded) {
  const Histogram before{"x", {{0.1, 5}, {0.25, 5}, {INFINITY, 5}}};
  const Histogram after{"x", {{0.1, 5}, {0.25, 9}, {INFINITY, 9}}};
  const Histogram d = histogram_delta(before, after);
  EXPECT_EQ(histogram_count(d), 4);
  // All four new observations are in (0.1, 0.25]: the median is its middle.
  EXPECT_DOUBLE_EQ(histogram_quantile(0.5, d), 0.175);
}

// The client's samples through the server's buckets: equal samples give equal quantiles, whatever
// the buckets' width.
TEST(HistogramOf, ClientSamplesInServerBucketsMatchTheServersQuantile) {
  const Histogram server{"x", {{0.01, 0}, {0.025, 4}, {0.05, 4}, {INFINITY, 4}}};
  const std::vector<double> client = {0.011, 0.012, 0.012, 0.013};  // true median 0.012
  const Histogram mine = histogram_of(client, server);
  ASSERT_EQ(mine.buckets.size(), 4u);
  EXPECT_EQ(mine.buckets[0].count, 0);
  EXPECT_EQ(mine.buckets[1].count, 4);
  EXPECT_EQ(mine.buckets[3].count, 4);
  EXPECT_DOUBLE_EQ(client_p50_in_server_buckets(client, server), histogram_quantile(0.5, server));
  EXPECT_DOUBLE_EQ(client_p50_in_server_buckets(client, server), 0.0175);
  EXPECT_DOUBLE_EQ(client_p50_in_server_buckets({0.03, 0.04}, server), 0.0375);
}

TEST(ServerLatencyDelta, BothFamiliesFromTwoPages) {
  const std::string before =
      "p_time_to_first_token_seconds_bucket{le=\"0.1\"} 0\np_time_to_first_token_seconds_bucket{le=\"+Inf\"} "
      "0\n"
      "p_time_per_output_token_seconds_bucket{le=\"0.01\"} "
      "0\np_time_per_output_token_seconds_bucket{le=\"+Inf\"} 0\n";
  const std::string after =
      "p_time_to_first_token_seconds_bucket{le=\"0.1\"} 2\np_time_to_first_token_seconds_bucket{le=\"+Inf\"} "
      "2\n"
      "p_time_per_output_token_seconds_bucket{le=\"0.01\"} "
      "4\np_time_per_output_token_seconds_bucket{le=\"+Inf\"} 4\n";
  const ServerLatency s = server_latency_delta(before, after);
  EXPECT_EQ(s.ttft_family, "p_time_to_first_token_seconds");
  EXPECT_EQ(s.ttft_count, 2);
  EXPECT_DOUBLE_EQ(s.ttft_p50, 0.05);
  EXPECT_EQ(s.tpot_count, 4);
  EXPECT_DOUBLE_EQ(s.tpot_p50, 0.005);
}

}  // namespace
}  // namespace pagedserve::bench
