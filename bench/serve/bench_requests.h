// What a run sends: the prompts (random token ids, or lines of a file) and each request's JSON
// body. Built before the clock starts so that making them costs the measurement nothing.
#pragma once

#include <string>
#include <vector>

#include "bench/serve/serve_options.h"

namespace pagedserve::bench {

struct BenchRequest {
  std::string body;       // the /v1/completions JSON
  int prompt_tokens = 0;  // known for token-id prompts; 0 for text (the server's usage says)
};

// One request per --num-prompts: random ids (seeded by --seed) or the file's non-empty lines,
// cycled. Throws std::runtime_error when the file cannot be read or has no prompt.
std::vector<BenchRequest> make_requests(const ServeOptions& options, const std::string& model);

}  // namespace pagedserve::bench
