// A histogram read from a Prometheus text exposition (/metrics), and its quantile the way
// PromQL's histogram_quantile computes it: linear interpolation inside the bucket holding the
// rank. Used to put the server's own TTFT/TPOT next to what the load generator measured.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace pagedserve::bench {

struct HistogramBucket {
  double upper_bound;  // `le`; +inf for the last
  double count;        // cumulative
};

struct Histogram {
  std::string name;                      // the family found, e.g. pagedserve_time_to_first_token_seconds
  std::vector<HistogramBucket> buckets;  // ascending `le`, summed over every other label
};

// The first histogram family whose name is `suffix` or ends in ":suffix" or "_suffix" (so
// `vllm:time_to_first_token_seconds`, `pagedserve:...` and `pagedserve_...` are all found).
// Empty buckets when there is none.
Histogram find_histogram(std::string_view exposition, std::string_view suffix);

// after - before, bucket by bucket (a counter reset shows as negative counts; callers compare
// the total with what they sent).
Histogram histogram_delta(const Histogram& before, const Histogram& after);

// `values` counted into the buckets of `like` (same bounds): the client's samples seen through
// the server's bucket resolution, so that two quantiles compare without the buckets' error.
Histogram histogram_of(const std::vector<double>& values, const Histogram& like);

// Observations counted (the +Inf bucket).
double histogram_count(const Histogram& h);

// histogram_quantile(q, h): NaN when empty; the highest finite bound when the rank falls in
// the +Inf bucket; the first bucket interpolates from 0.
double histogram_quantile(double q, const Histogram& h);

}  // namespace pagedserve::bench
