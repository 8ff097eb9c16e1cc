// The server's own view of a run: the p50 of its TTFT and TPOT histograms over what the run added
// (a /metrics page read before and one after), to set beside the client's figures. Pure.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "bench/serve/prometheus_histogram.h"

namespace pagedserve::bench {

struct ServerLatency {
  std::string ttft_family;  // the histogram found, empty when the page has none
  std::string tpot_family;
  double ttft_count = 0;  // observations the run added
  double tpot_count = 0;
  double ttft_p50 = 0;  // seconds; NaN when the run added none
  double tpot_p50 = 0;
  Histogram ttft;  // the run's delta, kept for client_p50_in_server_buckets
  Histogram tpot;
};

// Looks for *time_to_first_token_seconds and *time_per_output_token_seconds under any prefix
// (pagedserve_, pagedserve:, vllm:).
ServerLatency server_latency_delta(std::string_view before, std::string_view after);

// The p50 of the client's samples (seconds) counted into the server histogram's buckets and
// interpolated the same way: what the server's figure should read if both measured the same.
double client_p50_in_server_buckets(const std::vector<double>& client, const Histogram& server);

}  // namespace pagedserve::bench
