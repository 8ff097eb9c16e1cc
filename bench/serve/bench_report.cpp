#include "bench/serve/bench_report.h"

#include <cmath>
#include <cstdio>

#include <nlohmann/json.hpp>

namespace pagedserve::bench {
namespace {

std::string line(const char* label, double value, int decimals) {
  char buf[128];
  std::snprintf(buf, sizeof buf, "%-40s %-10.*f\n", label, decimals, value);
  return buf;
}

std::string text_line(const char* label, const std::string& value) {
  char buf[256];
  std::snprintf(buf, sizeof buf, "%-40s %s\n", label, value.c_str());
  return buf;
}

std::string heading(const std::string& title, char fill) {
  const size_t width = 50;
  const size_t pad = title.size() + 2 < width ? width - title.size() - 2 : 0;
  const std::string inner =
      title.empty() ? std::string(width, fill)
                    : std::string(pad / 2, fill) + " " + title + " " + std::string(pad - pad / 2, fill);
  return inner + "\n";
}

std::string section(const char* title, const char* name, const Distribution& d) {
  std::string out = heading(title, '-');
  const std::string n(name);
  out += line(("Mean " + n + " (ms):").c_str(), d.mean * 1e3, 2);
  out += line(("Median " + n + " (ms):").c_str(), d.median * 1e3, 2);
  out += line(("Std " + n + " (ms):").c_str(), d.stddev * 1e3, 2);
  out += line(("P90 " + n + " (ms):").c_str(), d.p90 * 1e3, 2);
  out += line(("P99 " + n + " (ms):").c_str(), d.p99 * 1e3, 2);
  return out;
}

void put_distribution(nlohmann::json& j, const char* name, const Distribution& d) {
  const std::string n(name);
  j["mean_" + n + "_ms"] = d.mean * 1e3;
  j["median_" + n + "_ms"] = d.median * 1e3;
  j["std_" + n + "_ms"] = d.stddev * 1e3;
  j["p90_" + n + "_ms"] = d.p90 * 1e3;
  j["p99_" + n + "_ms"] = d.p99 * 1e3;
}

// JSON has no NaN: an empty histogram is null.
nlohmann::json ms_or_null(double seconds) {
  return std::isnan(seconds) ? nlohmann::json(nullptr) : nlohmann::json(seconds * 1e3);
}

}  // namespace

BenchSummary summarize_run(const LoadRun& run) {
  BenchSummary s;
  s.duration = run.duration;
  std::vector<double> ttft, tpot, itl, e2el;
  for (const RequestResult& r : run.results) {
    if (!r.success) {
      ++s.failed;
      if (s.first_error.empty()) s.first_error = r.error;
      continue;
    }
    ++s.completed;
    s.total_input_tokens += r.prompt_tokens;
    s.total_output_tokens += r.output_tokens;
    ttft.push_back(r.ttft);
    e2el.push_back(r.latency);
    if (r.output_tokens > 1) tpot.push_back((r.latency - r.ttft) / (r.output_tokens - 1));
    itl.insert(itl.end(), r.itl.begin(), r.itl.end());
  }
  if (s.duration > 0) {
    s.request_throughput = s.completed / s.duration;
    s.input_throughput = double(s.total_input_tokens) / s.duration;
    s.output_throughput = double(s.total_output_tokens) / s.duration;
    s.total_token_throughput = double(s.total_input_tokens + s.total_output_tokens) / s.duration;
  }
  s.ttft = summarize(ttft);
  s.tpot = summarize(tpot);
  s.ttft_samples = std::move(ttft);
  s.tpot_samples = std::move(tpot);
  s.itl = summarize(itl);
  s.e2el = summarize(e2el);
  return s;
}

std::string format_report(const BenchSummary& s, const ServeOptions& o,
                          const std::optional<ServerLatency>& server) {
  std::string out = heading("Serving Benchmark Result", '=');
  out += line("Successful requests:", s.completed, 0);
  out += line("Failed requests:", s.failed, 0);
  out += text_line("Maximum request concurrency:",
                   o.max_concurrency > 0 ? std::to_string(o.max_concurrency) : std::string("unlimited"));
  out += std::isinf(o.request_rate) ? text_line("Request rate (req/s):", "inf")
                                    : line("Request rate (req/s):", o.request_rate, 2);
  out += line("Benchmark duration (s):", s.duration, 2);
  out += line("Total input tokens:", double(s.total_input_tokens), 0);
  out += line("Total generated tokens:", double(s.total_output_tokens), 0);
  out += line("Request throughput (req/s):", s.request_throughput, 2);
  out += line("Input token throughput (tok/s):", s.input_throughput, 2);
  out += line("Output token throughput (tok/s):", s.output_throughput, 2);
  out += line("Total token throughput (tok/s):", s.total_token_throughput, 2);
  out += section("Time to First Token", "TTFT", s.ttft);
  out += section("Time per Output Token (excl. 1st token)", "TPOT", s.tpot);
  out += section("Inter-token Latency", "ITL", s.itl);
  out += section("End-to-end Latency", "E2EL", s.e2el);
  if (server) {
    out += heading("Server /metrics over the run (p50)", '-');
    if (server->ttft_family.empty()) {
      out += "no *time_to_first_token_seconds histogram on /metrics\n";
    } else {
      // The bucketed client figure is the like-for-like one: both go through the same buckets.
      out += line("Server median TTFT (ms):", server->ttft_p50 * 1e3, 2);
      out += line("Client median TTFT, bucketed (ms):",
                  client_p50_in_server_buckets(s.ttft_samples, server->ttft) * 1e3, 2);
      out += line("Client median TTFT (ms):", s.ttft.median * 1e3, 2);
      out += line("Server median TPOT (ms):", server->tpot_p50 * 1e3, 2);
      out += line("Client median TPOT, bucketed (ms):",
                  client_p50_in_server_buckets(s.tpot_samples, server->tpot) * 1e3, 2);
      out += line("Client median TPOT (ms):", s.tpot.median * 1e3, 2);
      out += line("Server TTFT observations:", server->ttft_count, 0);
    }
  }
  out += heading("", '=');
  if (!s.first_error.empty()) out += "first failure: " + s.first_error + "\n";
  return out;
}

std::string report_json(const BenchSummary& s, const LoadRun& run, const ServeOptions& o,
                        const std::string& model, const std::optional<ServerLatency>& server) {
  nlohmann::json j;
  j["model_id"] = model;
  j["num_prompts"] = o.num_prompts;
  j["max_concurrency"] = o.max_concurrency > 0 ? nlohmann::json(o.max_concurrency) : nlohmann::json(nullptr);
  j["request_rate"] = std::isinf(o.request_rate) ? nlohmann::json("inf") : nlohmann::json(o.request_rate);
  j["duration"] = s.duration;
  j["completed"] = s.completed;
  j["failed"] = s.failed;
  j["total_input_tokens"] = s.total_input_tokens;
  j["total_output_tokens"] = s.total_output_tokens;
  j["request_throughput"] = s.request_throughput;
  j["input_throughput"] = s.input_throughput;
  j["output_throughput"] = s.output_throughput;
  j["total_token_throughput"] = s.total_token_throughput;
  put_distribution(j, "ttft", s.ttft);
  put_distribution(j, "tpot", s.tpot);
  put_distribution(j, "itl", s.itl);
  put_distribution(j, "e2el", s.e2el);
  nlohmann::json input_lens = nlohmann::json::array(), output_lens = nlohmann::json::array(),
                 ttfts = nlohmann::json::array(), itls = nlohmann::json::array(),
                 e2els = nlohmann::json::array(), errors = nlohmann::json::array();
  for (const RequestResult& r : run.results) {
    input_lens.push_back(r.prompt_tokens);
    output_lens.push_back(r.output_tokens);
    ttfts.push_back(r.ttft);
    itls.push_back(r.itl);
    e2els.push_back(r.latency);
    errors.push_back(r.error);
  }
  j["input_lens"] = std::move(input_lens);
  j["output_lens"] = std::move(output_lens);
  j["ttfts"] = std::move(ttfts);
  j["itls"] = std::move(itls);
  j["e2els"] = std::move(e2els);
  j["errors"] = std::move(errors);
  if (server) {
    j["server_metrics"] = {{"ttft_histogram", server->ttft_family},
                           {"tpot_histogram", server->tpot_family},
                           {"ttft_count", server->ttft_count},
                           {"tpot_count", server->tpot_count},
                           {"median_ttft_ms", ms_or_null(server->ttft_p50)},
                           {"median_tpot_ms", ms_or_null(server->tpot_p50)},
                           {"client_median_ttft_ms_in_server_buckets",
                            ms_or_null(client_p50_in_server_buckets(s.ttft_samples, server->ttft))},
                           {"client_median_tpot_ms_in_server_buckets",
                            ms_or_null(client_p50_in_server_buckets(s.tpot_samples, server->tpot))}};
  }
  return j.dump(2) + "\n";
}

}  // namespace pagedserve::bench
