// Sends a run's requests on their arrival schedule with at most --max-concurrency in flight, one
// blocking connection per worker thread, and measures each streamed response. The calling thread
// waits for the run and draws the progress bar; workers touch only their own results.
#pragma once

#include <string>
#include <vector>

#include "bench/serve/bench_requests.h"
#include "bench/serve/http_client.h"

namespace pagedserve::bench {

struct RequestResult {
  bool success = false;
  std::string error;        // why it failed (HTTP status and message, or the stream's error)
  int prompt_tokens = 0;    // usage.prompt_tokens, else what we sent
  int output_tokens = 0;    // usage.completion_tokens, else the chunks with text
  double ttft = 0;          // seconds from sending to the first chunk with text
  double latency = 0;       // seconds from sending to the end of the stream
  std::vector<double> itl;  // seconds between consecutive chunks with text
  double sent_at = 0;       // seconds from the start of the run (set by run_load)
};

// Streams one request and measures it; never throws (failures are results).
RequestResult run_request(const HttpTarget& target, const std::string& path, const BenchRequest& request);

struct LoadRun {
  std::vector<RequestResult> results;  // in request order
  double duration = 0;                 // seconds from the start to the end of the last answer
};

// arrivals[i]: earliest send time of request i in seconds from the start (see arrival_schedule.h);
// max_concurrency 0: no limit (one worker per request, at most 1024).
LoadRun run_load(const HttpTarget& target, const std::string& path, const std::vector<BenchRequest>& requests,
                 const std::vector<double>& arrivals, int max_concurrency, bool progress);

}  // namespace pagedserve::bench
