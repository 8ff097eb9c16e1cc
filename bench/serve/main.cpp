// bench_serve: load generator for OpenAI-compatible completions servers (see --help and README's
// "bench/serve"). Exit 0 when the run happened (failed requests are part of the result), 1 when
// it could not start or write its result, 2 on bad flags.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <optional>
#include <stdexcept>
#include <thread>

#include <nlohmann/json.hpp>

#include "bench/serve/arrival_schedule.h"
#include "bench/serve/bench_report.h"
#include "bench/serve/bench_requests.h"
#include "bench/serve/http_client.h"
#include "bench/serve/load_runner.h"
#include "bench/serve/serve_options.h"
#include "bench/serve/server_metrics_delta.h"

namespace pagedserve::bench {
namespace {

std::string first_model(const HttpTarget& target, const std::string& prefix) {
  const HttpReply reply = http_get(target, prefix + "/v1/models");
  if (reply.status != 200)
    throw std::runtime_error("GET /v1/models answered " + std::to_string(reply.status) + " (pass --model)");
  const nlohmann::json body = nlohmann::json::parse(reply.body, nullptr, false);
  if (!body.is_object() || !body.contains("data") || !body["data"].is_array() || body["data"].empty() ||
      !body["data"][0].contains("id") || !body["data"][0]["id"].is_string())
    throw std::runtime_error("GET /v1/models lists no model (pass --model)");
  return body["data"][0]["id"].get<std::string>();
}

std::string scrape(const HttpTarget& target, const std::string& prefix) {
  const HttpReply reply = http_get(target, prefix + "/metrics");
  if (reply.status != 200) throw std::runtime_error("GET /metrics answered " + std::to_string(reply.status));
  return reply.body;
}

int run(const ServeOptions& o) {
  const HttpTarget target{o.host, o.port, o.api_key};
  const std::string model = o.model.empty() ? first_model(target, o.path_prefix) : o.model;
  const std::vector<BenchRequest> requests = make_requests(o, model);
  const std::vector<double> arrivals = poisson_arrivals(o.num_prompts, o.request_rate, o.seed);
  std::fprintf(stderr, "bench_serve: %d requests to http://%s:%d%s%s, model %s\n", o.num_prompts,
               o.host.c_str(), o.port, o.path_prefix.c_str(), o.endpoint.c_str(), model.c_str());

  const std::string before = o.scrape_metrics ? scrape(target, o.path_prefix) : std::string();
  const LoadRun load =
      run_load(target, o.path_prefix + o.endpoint, requests, arrivals, o.max_concurrency, o.progress);
  const BenchSummary summary = summarize_run(load);

  std::optional<ServerLatency> server;
  if (o.scrape_metrics) {
    // A server may record a request's histograms just after sending its last chunk: wait (up to
    // 2 s) until every completed request shows up.
    for (int attempt = 0;; ++attempt) {
      server = server_latency_delta(before, scrape(target, o.path_prefix));
      if (server->ttft_family.empty() || server->ttft_count >= summary.completed || attempt == 20) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  std::cout << format_report(summary, o, server) << std::flush;
  if (!o.result_file.empty()) {
    std::ofstream out(o.result_file);
    out << report_json(summary, load, o, model, server);
    if (!out) throw std::runtime_error("cannot write --result-file " + o.result_file);
  }
  return 0;
}

}  // namespace
}  // namespace pagedserve::bench

int main(int argc, char** argv) {
  using namespace pagedserve::bench;
  const ParsedOptions parsed = parse_serve_options(std::vector<std::string>(argv + 1, argv + argc));
  if (parsed.help) {
    std::cout << serve_usage();
    return 0;
  }
  if (!parsed.error.empty()) {
    std::cerr << "bench_serve: " << parsed.error << "\n";
    return 2;
  }
  try {
    return run(parsed.options);
  } catch (const std::exception& e) {
    std::cerr << "bench_serve: " << e.what() << "\n";
    return 1;
  }
}
