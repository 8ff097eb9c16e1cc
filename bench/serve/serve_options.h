// bench_serve's command line: what to send, to whom, how fast. Parsed once on the main thread.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace pagedserve::bench {

struct ServeOptions {
  std::string host = "127.0.0.1";
  int port = 8000;
  std::string path_prefix;  // from --base-url http://host:port/prefix
  std::string endpoint = "/v1/completions";
  std::string model;  // empty: the first of GET /v1/models
  int num_prompts = 1000;
  int input_len = 1024;       // random prompts: this many token ids each
  int output_len = 128;       // max_tokens
  int token_id_low = 1000;    // random ids are drawn from [low, high): ordinary tokens of every
  int token_id_high = 30000;  // common vocabulary (Llama 2/3, Qwen2/3, Mistral), no specials
  std::string prompt_file;    // one prompt per line instead of random ids
  int max_concurrency = 0;    // 0: no limit
  double request_rate = std::numeric_limits<double>::infinity();  // requests/s; inf: all at once
  bool ignore_eos = false;
  double temperature = 0;
  uint64_t seed = 0;
  std::string api_key;  // --api-key, else $OPENAI_API_KEY
  std::string result_file;
  bool scrape_metrics = false;
  bool progress = true;
};

struct ParsedOptions {
  ServeOptions options;
  bool help = false;
  std::string error;  // non-empty: print it and exit 2
};

ParsedOptions parse_serve_options(const std::vector<std::string>& args);
std::string serve_usage();

}  // namespace pagedserve::bench
