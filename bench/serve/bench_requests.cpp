#include "bench/serve/bench_requests.h"

#include <fstream>
#include <random>
#include <stdexcept>

#include <nlohmann/json.hpp>

namespace pagedserve::bench {
namespace {

// Only fields every OpenAI-compatible completions server takes, plus ignore_eos when asked.
nlohmann::json request_body(const ServeOptions& o, const std::string& model) {
  nlohmann::json body = {{"model", model},
                         {"max_tokens", o.output_len},
                         {"temperature", o.temperature},
                         {"stream", true},
                         {"stream_options", {{"include_usage", true}}}};
  if (o.ignore_eos) body["ignore_eos"] = true;
  return body;
}

std::vector<std::string> read_prompt_lines(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read --prompt-file " + path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty()) lines.push_back(std::move(line));
  }
  if (lines.empty()) throw std::runtime_error("--prompt-file " + path + " has no non-empty line");
  return lines;
}

}  // namespace

std::vector<BenchRequest> make_requests(const ServeOptions& o, const std::string& model) {
  std::vector<BenchRequest> requests;
  requests.reserve(size_t(o.num_prompts));
  nlohmann::json body = request_body(o, model);
  if (!o.prompt_file.empty()) {
    const std::vector<std::string> lines = read_prompt_lines(o.prompt_file);
    for (int i = 0; i < o.num_prompts; ++i) {
      body["prompt"] = lines[size_t(i) % lines.size()];
      requests.push_back({body.dump(), 0});
    }
    return requests;
  }
  std::mt19937_64 engine(o.seed);
  std::uniform_int_distribution<int> id(o.token_id_low, o.token_id_high - 1);
  std::vector<int> ids(size_t(o.input_len));
  for (int i = 0; i < o.num_prompts; ++i) {
    for (int& t : ids) t = id(engine);
    body["prompt"] = ids;
    requests.push_back({body.dump(), o.input_len});
  }
  return requests;
}

}  // namespace pagedserve::bench
