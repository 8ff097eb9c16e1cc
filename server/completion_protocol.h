// Parsing and validation of POST /v1/completions bodies. Pure functions, any thread.
// JSON stays inside the .cpp so that including this header is cheap.
#pragma once

#include <optional>
#include <string_view>
#include <variant>

#include "server/api_error.h"
#include "server/completion_request.h"

namespace pagedserve {

// Everything that can be checked before tokenization: JSON shape, types, ranges, token ids
// against the vocabulary (prompt, stop_token_ids, logit_bias), a model name other than the served
// one (404). Unknown fields are ignored; known ones this server does not implement (suffix,
// best_of other than n) are refused.
std::variant<CompletionRequest, ApiError> parse_completion_request(std::string_view body,
                                                                   const ProtocolLimits& limits);

// After tokenization: prompt + max_tokens must fit the context, and the prompt must be non-empty.
// Returns an error naming both numbers, or nothing when the request fits.
std::optional<ApiError> check_context_length(int prompt_tokens, int max_tokens, int max_model_len);

}  // namespace pagedserve
