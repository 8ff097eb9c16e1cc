#include "bench/serve/arrival_schedule.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace pagedserve::bench {
namespace {

TEST(PoissonArrivals, InfiniteRateSendsEverythingAtOnce) {
  const auto at = poisson_arrivals(5, std::numeric_limits<double>::infinity(), 1);
  ASSERT_EQ(at.size(), 5u);
  for (double t : at) EXPECT_EQ(t, 0);
}

TEST(PoissonArrivals, SameSeedSameScheduleOtherSeedOther) {
  const auto a = poisson_arrivals(100, 4.0, 42);
  EXPECT_EQ(a, poisson_arrivals(100, 4.0, 42));
  EXPECT_NE(a, poisson_arrivals(100, 4.0, 43));
  EXPECT_EQ(a.front(), 0);
  for (size_t i = 1; i < a.size(); ++i) EXPECT_GT(a[i], a[i - 1]);
}

// Exponential gaps of mean 1/rate: over 20000 gaps the mean rate is within 3% (the standard error
// is 0.7%), and the gaps' coefficient of variation is that of an exponential, 1 (a fixed-interval
// or uniform schedule would fail it).
TEST(PoissonArrivals, MeanRateAndExponentialSpreadWithinTolerance) {
  for (double rate : {0.5, 20.0, 1000.0}) {
    const int n = 20001;
    const auto at = poisson_arrivals(n, rate, 7);
    const double measured_rate = (n - 1) / at.back();
    EXPECT_NEAR(measured_rate / rate, 1.0, 0.03) << "rate " << rate;
    const double mean_gap = at.back() / (n - 1);
    double squares = 0;
    for (size_t i = 1; i < at.size(); ++i) squares += std::pow(at[i] - at[i - 1] - mean_gap, 2);
    const double cv = std::sqrt(squares / (n - 1)) / mean_gap;
    EXPECT_NEAR(cv, 1.0, 0.05) << "rate " << rate;
  }
}

}  // namespace
}  // namespace pagedserve::bench
