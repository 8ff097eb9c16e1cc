#include "bench/serve/serve_options.h"

#include <gtest/gtest.h>

#include <cmath>

namespace pagedserve::bench {
namespace {

TEST(ServeOptions, DefaultsAreVllmBenchServes) {
  const ParsedOptions p = parse_serve_options({});
  ASSERT_EQ(p.error, "");
  EXPECT_EQ(p.options.num_prompts, 1000);
  EXPECT_TRUE(std::isinf(p.options.request_rate));
  EXPECT_EQ(p.options.max_concurrency, 0);
  EXPECT_EQ(p.options.endpoint, "/v1/completions");
}

TEST(ServeOptions, EveryFlagBothSpellings) {
  const ParsedOptions p = parse_serve_options({"--host",
                                               "10.0.0.2",
                                               "--port=9000",
                                               "--model",
                                               "m",
                                               "--num-prompts",
                                               "16",
                                               "--input-len=32",
                                               "--output-len",
                                               "8",
                                               "--max-concurrency",
                                               "4",
                                               "--request-rate",
                                               "2.5",
                                               "--ignore-eos",
                                               "--seed",
                                               "3",
                                               "--api-key",
                                               "k",
                                               "--result-file",
                                               "r.json",
                                               "--scrape-metrics",
                                               "--token-id-range",
                                               "5:10",
                                               "--no-progress"});
  ASSERT_EQ(p.error, "");
  const ServeOptions& o = p.options;
  EXPECT_EQ(o.host, "10.0.0.2");
  EXPECT_EQ(o.port, 9000);
  EXPECT_EQ(o.model, "m");
  EXPECT_EQ(o.num_prompts, 16);
  EXPECT_EQ(o.input_len, 32);
  EXPECT_EQ(o.output_len, 8);
  EXPECT_EQ(o.max_concurrency, 4);
  EXPECT_DOUBLE_EQ(o.request_rate, 2.5);
  EXPECT_TRUE(o.ignore_eos);
  EXPECT_EQ(o.seed, 3u);
  EXPECT_EQ(o.api_key, "k");
  EXPECT_EQ(o.result_file, "r.json");
  EXPECT_TRUE(o.scrape_metrics);
  EXPECT_EQ(o.token_id_low, 5);
  EXPECT_EQ(o.token_id_high, 10);
  EXPECT_FALSE(o.progress);
}

TEST(ServeOptions, BaseUrl) {
  ServeOptions o = parse_serve_options({"--base-url", "http://gpu-box:8001/api/"}).options;
  EXPECT_EQ(o.host, "gpu-box");
  EXPECT_EQ(o.port, 8001);
  EXPECT_EQ(o.path_prefix, "/api");
  o = parse_serve_options({"--base-url", "http://[::1]:7000"}).options;
  EXPECT_EQ(o.host, "::1");
  EXPECT_EQ(o.port, 7000);
  EXPECT_NE(parse_serve_options({"--base-url", "https://x"}).error, "");
}

TEST(ServeOptions, BadInputIsAnErrorNamingTheFlag) {
  EXPECT_NE(parse_serve_options({"--num-prompts", "0"}).error.find("--num-prompts"), std::string::npos);
  EXPECT_NE(parse_serve_options({"--request-rate", "-1"}).error, "");
  EXPECT_NE(parse_serve_options({"--request-rate", "fast"}).error, "");
  EXPECT_NE(parse_serve_options({"--port"}).error.find("needs a value"), std::string::npos);
  EXPECT_NE(parse_serve_options({"--ignore-eos=1"}).error, "");
  EXPECT_NE(parse_serve_options({"--bogus"}).error.find("--bogus"), std::string::npos);
  EXPECT_NE(parse_serve_options({"--token-id-range", "10:5"}).error, "");
  EXPECT_TRUE(parse_serve_options({"--help"}).help);
}

}  // namespace
}  // namespace pagedserve::bench
