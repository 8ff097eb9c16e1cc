// A run's results summarised as `vllm bench serve` does (figures over the successful requests),
// printed as its table and written as JSON with vLLM's key names. Pure, any thread.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "bench/serve/load_runner.h"
#include "bench/serve/serve_options.h"
#include "bench/serve/server_metrics_delta.h"
#include "bench/serve/summary_stats.h"

namespace pagedserve::bench {

struct BenchSummary {
  int completed = 0;
  int failed = 0;
  double duration = 0;  // seconds
  long long total_input_tokens = 0;
  long long total_output_tokens = 0;
  double request_throughput = 0;  // per second
  double input_throughput = 0;
  double output_throughput = 0;
  double total_token_throughput = 0;
  Distribution ttft;                 // seconds, one per request
  Distribution tpot;                 // seconds, (e2e - ttft) / (output_tokens - 1), requests with > 1 token
  Distribution itl;                  // seconds, every gap of every request
  Distribution e2el;                 // seconds, one per request
  std::vector<double> ttft_samples;  // the successful requests' own, for the server comparison
  std::vector<double> tpot_samples;
  std::string first_error;
};

BenchSummary summarize_run(const LoadRun& run);

// The table on stdout; `server` (from --scrape-metrics) adds the server's p50s beside ours.
std::string format_report(const BenchSummary& s, const ServeOptions& o,
                          const std::optional<ServerLatency>& server);

// The summary (ms figures named as vLLM's: mean_ttft_ms, median_ttft_ms, p99_ttft_ms, ...),
// the per-request arrays (input_lens, output_lens, ttfts, itls, e2els in seconds, errors) and,
// with --scrape-metrics, "server_metrics".
std::string report_json(const BenchSummary& s, const LoadRun& run, const ServeOptions& o,
                        const std::string& model, const std::optional<ServerLatency>& server);

}  // namespace pagedserve::bench
