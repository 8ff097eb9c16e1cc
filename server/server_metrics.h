// The server's Prometheus metrics, named like vLLM's with the prefix `pagedserve_` (vLLM's `vllm:`
// uses the ':' Prometheus reserves for recording rules) so dashboards port by a rename (README's
// table), all labelled model_name. Request histograms are fed from each finished request's timings;
// gauges and engine-wide counters are refreshed from BackendStats at scrape time.
//
// Threads: any thread (the engine thread calls record_finish through the sinks; /metrics renders).
#pragma once

#include <string>
#include <vector>

#include "server/completion_backend.h"
#include "server/metrics_registry.h"

namespace pagedserve {

// vLLM's bucket boundaries.
const std::vector<double>& ttft_buckets();          // 0.001 ... 2560 s
const std::vector<double>& tpot_buckets();          // 0.01 ... 80 s
const std::vector<double>& request_time_buckets();  // 0.3 ... 7680 s

class ServerMetrics {
 public:
  explicit ServerMetrics(std::string model_name);

  // One engine request (one choice) finished, aborted ones included.
  void record_finish(const GenerationFinish& finish);

  // Refreshes gauges and engine counters from `stats`, then renders the text exposition.
  std::string render(const BackendStats& stats);

  // With no backend yet (weights loading): gauges stay 0.
  std::string render_without_backend() const { return registry_.exposition(); }

 private:
  std::string model_name_;
  MetricsRegistry registry_;
  Histogram& ttft_;
  Histogram& tpot_;
  Histogram& e2e_;
  Histogram& queue_;
  Histogram& prefill_;
  Histogram& decode_;
  Counter& prompt_tokens_;
  Counter& generation_tokens_;
  Counter& success_stop_;
  Counter& success_length_;
  Counter& success_abort_;
  Counter& preemptions_;
  Counter& prefix_queries_;
  Counter& prefix_hits_;
  Gauge& running_;
  Gauge& waiting_;
  Gauge& kv_usage_;
};

}  // namespace pagedserve
