#include "server/server_metrics.h"

#include <gtest/gtest.h>

#include <sys/wait.h>
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <string>

namespace pagedserve {
namespace {

using namespace std::chrono_literals;

GenerationFinish finished(GenerationFinishReason reason, int completion_tokens) {
  GenerationFinish f;
  f.reason = reason;
  f.prompt_tokens = 4;
  f.completion_tokens = completion_tokens;
  SteadyTime t0 = std::chrono::steady_clock::now();
  f.timings.arrival = t0;
  f.timings.scheduled = t0 + 10ms;
  f.timings.first_token = t0 + 30ms;
  f.timings.finish = t0 + 30ms + 20ms * (completion_tokens - 1);
  return f;
}

std::string line_value(const std::string& text, const std::string& series) {
  auto at = text.find(series + " ");
  if (at == std::string::npos) return "<missing " + series + ">";
  auto start = at + series.size() + 1;
  return text.substr(start, text.find('\n', start) - start);
}

// Every vLLM bound is kept (dashboards ported from vLLM keep their le= series), the list is
// increasing, and where GPU TTFT (10 ms - 1 s) and TPOT (4 - 40 ms) fall no step exceeds 25%, so an
// interpolated p50 lands within ~10% of the exact one.
void expect_fine_superset(const std::vector<double>& ours, const std::vector<double>& vllm, double from,
                          double to) {
  for (double bound : vllm) {
    EXPECT_NE(std::find(ours.begin(), ours.end(), bound), ours.end()) << "vLLM bound " << bound;
  }
  for (std::size_t i = 1; i < ours.size(); ++i) {
    EXPECT_LT(ours[i - 1], ours[i]);
    if (ours[i - 1] >= from && ours[i] <= to) {
      EXPECT_LE(ours[i] / ours[i - 1], 1.26) << ours[i];
    }
  }
}

TEST(ServerMetrics, BucketsKeepVllmsBoundsAndAreFineWhereGpusAre) {
  expect_fine_superset(ttft_buckets(),
                       {0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1,  0.25,  0.5,   0.75,
                        1.0,   2.5,   5.0,  7.5,  10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0},
                       0.01, 0.1);
  expect_fine_superset(ttft_buckets(), {}, 0.1, 1.0);
  expect_fine_superset(tpot_buckets(),
                       {0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5,
                        10.0, 20.0, 40.0, 80.0},
                       0.004, 0.04);
  EXPECT_EQ(request_time_buckets().front(), 0.3);
  EXPECT_EQ(request_time_buckets().back(), 7680.0);
}

TEST(ServerMetrics, FinishesFeedHistogramsAndStatsFeedGauges) {
  ServerMetrics metrics("tiny");
  metrics.record_finish(finished(GenerationFinishReason::length, 5));
  metrics.record_finish(finished(GenerationFinishReason::stop, 1));
  GenerationFinish aborted;  // aborted while queued: only arrival and finish
  aborted.reason = GenerationFinishReason::abort;
  aborted.timings.arrival = std::chrono::steady_clock::now();
  aborted.timings.finish = aborted.timings.arrival + 5ms;
  metrics.record_finish(aborted);

  BackendStats stats;
  stats.num_running = 2;
  stats.num_waiting = 1;
  stats.kv_cache_usage = 0.25;
  stats.prompt_tokens = 12;
  stats.generation_tokens = 6;
  stats.num_preemptions = 1;
  stats.prefix_cache_queries = 32;
  stats.prefix_cache_hits = 16;
  std::string text = metrics.render(stats);
  const std::string m = "model_name=\"tiny\"";
  EXPECT_EQ(line_value(text, "pagedserve_e2e_request_latency_seconds_count{" + m + "}"), "3");
  EXPECT_EQ(line_value(text, "pagedserve_time_to_first_token_seconds_count{" + m + "}"), "2");
  EXPECT_EQ(line_value(text, "pagedserve_request_queue_time_seconds_count{" + m + "}"), "2");
  EXPECT_EQ(line_value(text, "pagedserve_time_per_output_token_seconds_count{" + m + "}"), "1");
  // TPOT of the 5-token request: 80 ms over 4 intervals, in the 0.025 bucket and not the 0.01 one.
  EXPECT_EQ(line_value(text, "pagedserve_time_per_output_token_seconds_bucket{" + m + ",le=\"0.01\"}"), "0");
  EXPECT_EQ(line_value(text, "pagedserve_time_per_output_token_seconds_bucket{" + m + ",le=\"0.025\"}"), "1");
  EXPECT_EQ(line_value(text, "pagedserve_request_success_total{" + m + ",finished_reason=\"stop\"}"), "1");
  EXPECT_EQ(line_value(text, "pagedserve_request_success_total{" + m + ",finished_reason=\"length\"}"), "1");
  EXPECT_EQ(line_value(text, "pagedserve_request_success_total{" + m + ",finished_reason=\"abort\"}"), "1");
  EXPECT_EQ(line_value(text, "pagedserve_num_requests_running{" + m + "}"), "2");
  EXPECT_EQ(line_value(text, "pagedserve_num_requests_waiting{" + m + "}"), "1");
  EXPECT_EQ(line_value(text, "pagedserve_kv_cache_usage_perc{" + m + "}"), "0.25");
  EXPECT_EQ(line_value(text, "pagedserve_prompt_tokens_total{" + m + "}"), "12");
  EXPECT_EQ(line_value(text, "pagedserve_generation_tokens_total{" + m + "}"), "6");
  EXPECT_EQ(line_value(text, "pagedserve_num_preemptions_total{" + m + "}"), "1");
  EXPECT_EQ(line_value(text, "pagedserve_prefix_cache_queries_total{" + m + "}"), "32");
  EXPECT_EQ(line_value(text, "pagedserve_prefix_cache_hits_total{" + m + "}"), "16");
}

TEST(ServerMetrics, PromtoolAcceptsTheExposition) {
#ifndef PAGEDSERVE_PROMTOOL
  GTEST_SKIP() << "promtool not found at configure time";
#else
  unsigned seed = std::random_device{}();
  std::printf("seed %u\n", seed);
  std::mt19937 rng(seed);
  ServerMetrics metrics("tiny \"quoted\" model");
  for (int i = 0; i < 20; ++i) {
    metrics.record_finish(finished(GenerationFinishReason(rng() % 3), 1 + int(rng() % 50)));
  }
  BackendStats stats;
  stats.kv_cache_usage = 0.5;
  std::string path = ::testing::TempDir() + "pagedserve_metrics_" + std::to_string(seed) + ".txt";
  std::ofstream(path) << metrics.render(stats);
  std::string command = std::string(PAGEDSERVE_PROMTOOL) + " check metrics < " + path + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  char buffer[512];
  while (std::fgets(buffer, sizeof buffer, pipe)) output += buffer;
  int status = pclose(pipe);
  std::remove(path.c_str());
  // A parse error exits 1 and lint findings exit 3 with one line each: the names are
  // Prometheus-legal (no ':', which is reserved for recording rules), so nothing may be reported.
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << output;
  EXPECT_EQ(output, "") << "promtool findings:\n" << output;
#endif
}

}  // namespace
}  // namespace pagedserve
