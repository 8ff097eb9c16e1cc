// The JSON of logprobs that completions' and chat's serialisation share. Includes nlohmann/json:
// for .cpp files of the server only (DESIGN.md §8: heavy headers stay out of widely included ones).
// Pure functions, any thread.
#pragma once

#include <nlohmann/json.hpp>

#include "server/completion_response.h"

namespace pagedserve {

// A logprob as JSON allows: -inf (and anything below) clamped to -9999, as vLLM does.
double finite_logprob(float logprob);

// vLLM's prompt_logprobs: [null, {"<id>": {"logprob", "rank", "decoded_token"}, ...}, ...].
nlohmann::ordered_json prompt_logprobs_json(const PromptLogprobs& prompt_logprobs);

}  // namespace pagedserve
