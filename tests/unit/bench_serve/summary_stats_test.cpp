#include "bench/serve/summary_stats.h"

#include <gtest/gtest.h>

namespace pagedserve::bench {
namespace {

// Expected values are numpy's: np.percentile([4, 1, 3, 2], [50, 90, 99]) = 2.5, 3.7, 3.97.
TEST(Percentile, InterpolatesLinearlyBetweenClosestRanksLikeNumpy) {
  const std::vector<double> v = {4, 1, 3, 2};
  EXPECT_DOUBLE_EQ(percentile(v, 50), 2.5);
  EXPECT_DOUBLE_EQ(percentile(v, 90), 3.7);
  EXPECT_DOUBLE_EQ(percentile(v, 99), 3.97);
  EXPECT_DOUBLE_EQ(percentile(v, 0), 1);
  EXPECT_DOUBLE_EQ(percentile(v, 100), 4);
}

TEST(Percentile, OneValueAndNone) {
  EXPECT_DOUBLE_EQ(percentile({7}, 99), 7);
  EXPECT_DOUBLE_EQ(percentile({}, 50), 0);
}

TEST(Summarize, MeanPopulationStdAndOrderedPercentiles) {
  const Distribution d = summarize({2, 4, 4, 4, 5, 5, 7, 9});
  EXPECT_EQ(d.count, 8);
  EXPECT_DOUBLE_EQ(d.mean, 5);
  EXPECT_DOUBLE_EQ(d.stddev, 2);  // np.std, ddof = 0
  EXPECT_DOUBLE_EQ(d.median, 4.5);
  EXPECT_LE(d.median, d.p90);
  EXPECT_LE(d.p90, d.p99);
  EXPECT_DOUBLE_EQ(d.p99, 8.86);  // 7 + (9 - 7) * 0.93
}

TEST(Summarize, EmptyIsAllZero) {
  const Distribution d = summarize({});
  EXPECT_EQ(d.count, 0);
  EXPECT_EQ(d.mean, 0);
  EXPECT_EQ(d.p99, 0);
}

}  // namespace
}  // namespace pagedserve::bench
