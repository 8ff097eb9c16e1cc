#include "bench/serve/arrival_schedule.h"

#include <cmath>
#include <random>

namespace pagedserve::bench {

std::vector<double> poisson_arrivals(int count, double rate, uint64_t seed) {
  std::vector<double> at(size_t(std::max(count, 0)), 0.0);
  if (std::isinf(rate)) return at;
  // Own engine per schedule, separate from the prompts' one: changing --input-len does not
  // move the arrival times of a seed.
  std::mt19937_64 engine(seed ^ 0x9e3779b97f4a7c15ull);
  std::exponential_distribution<double> gap(rate);
  for (size_t i = 1; i < at.size(); ++i) at[i] = at[i - 1] + gap(engine);
  return at;
}

}  // namespace pagedserve::bench
