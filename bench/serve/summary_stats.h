// Summary statistics of latency samples, as `vllm bench serve` reports them (numpy's defaults:
// linear-interpolated percentiles, population standard deviation). Pure functions, any thread.
#pragma once

#include <vector>

namespace pagedserve::bench {

// The p-th percentile (0 <= p <= 100) of `values` by linear interpolation between the closest
// ranks (numpy.percentile's default); 0 for an empty input, matching vLLM's empty-run report.
double percentile(std::vector<double> values, double p);

struct Distribution {
  double mean = 0;
  double stddev = 0;  // population (ddof = 0), as numpy.std
  double median = 0;
  double p90 = 0;
  double p99 = 0;
  int count = 0;
};

Distribution summarize(const std::vector<double>& values);

}  // namespace pagedserve::bench
