#include "bench/serve/server_metrics_delta.h"

#include "bench/serve/prometheus_histogram.h"

namespace pagedserve::bench {

ServerLatency server_latency_delta(std::string_view before, std::string_view after) {
  ServerLatency s;
  const Histogram ttft = histogram_delta(find_histogram(before, "time_to_first_token_seconds"),
                                         find_histogram(after, "time_to_first_token_seconds"));
  const Histogram tpot = histogram_delta(find_histogram(before, "time_per_output_token_seconds"),
                                         find_histogram(after, "time_per_output_token_seconds"));
  s.ttft_family = ttft.name;
  s.tpot_family = tpot.name;
  s.ttft_count = histogram_count(ttft);
  s.tpot_count = histogram_count(tpot);
  s.ttft_p50 = histogram_quantile(0.5, ttft);
  s.tpot_p50 = histogram_quantile(0.5, tpot);
  s.ttft = ttft;
  s.tpot = tpot;
  return s;
}

double client_p50_in_server_buckets(const std::vector<double>& client, const Histogram& server) {
  return histogram_quantile(0.5, histogram_of(client, server));
}

}  // namespace pagedserve::bench
