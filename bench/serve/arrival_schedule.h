// When each request of a run is sent: a Poisson process (exponential gaps) of a given mean rate,
// seeded so that two runs with the same --seed send at the same offsets. A rate of +inf sends
// everything at once (vLLM's `--request-rate inf`).
#pragma once

#include <cstdint>
#include <vector>

namespace pagedserve::bench {

// Seconds from the start of the run at which request i may be sent; the first is at 0, each
// next one an exponential gap (mean 1/rate) later. rate must be > 0 (or infinity).
std::vector<double> poisson_arrivals(int count, double rate, uint64_t seed);

}  // namespace pagedserve::bench
