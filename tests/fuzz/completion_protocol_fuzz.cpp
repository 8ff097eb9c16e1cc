// Fuzzes POST /v1/completions bodies: parse_completion_request (JSON, types, ranges, token ids)
// and the error body the server would send. Any bytes: an OpenAI-shaped request or an ApiError,
// never a crash; what parses satisfies the limits it was validated against.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string_view>
#include <variant>

#include "server/completion_protocol.h"
#include "tests/fuzz/fuzz_check.h"

using namespace pagedserve;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  ProtocolLimits limits;
  limits.served_model_name = "tiny-qwen3";
  limits.vocab_size = 1000;
  limits.max_model_len = 256;
  std::string_view body(reinterpret_cast<const char*>(data), size);
  auto parsed = parse_completion_request(body, limits);
  if (const auto* error = std::get_if<ApiError>(&parsed)) {
    FUZZ_CHECK(error->status >= 400 && error->status < 500);
    // The server sends this body; it must be JSON whatever bytes the message quotes.
    FUZZ_CHECK(!nlohmann::json::parse(error_body_json(*error), nullptr, false).is_discarded());
    return 0;
  }
  const CompletionRequest& request = std::get<CompletionRequest>(parsed);
  FUZZ_CHECK(!request.prompts.empty() && int(request.prompts.size()) <= limits.max_prompts);
  FUZZ_CHECK(request.n >= 1 && request.n <= limits.max_n);
  // max_tokens 0 is the prompt alone, scored: only with echo.
  FUZZ_CHECK(request.max_tokens >= 1 || (request.echo && request.max_tokens == 0));
  FUZZ_CHECK(request.min_tokens >= 0 && request.min_tokens <= request.max_tokens);
  FUZZ_CHECK(!request.logprobs || (*request.logprobs >= 0 && *request.logprobs <= limits.max_logprobs));
  for (const CompletionPrompt& prompt : request.prompts) {
    for (std::int32_t id : prompt.token_ids) FUZZ_CHECK(id >= 0 && id < limits.vocab_size);
  }
  for (std::int32_t id : request.stop_token_ids) FUZZ_CHECK(id >= 0 && id < limits.vocab_size);
  // check_context_length runs on every parsed request after tokenization.
  for (const CompletionPrompt& prompt : request.prompts) {
    check_context_length(int(prompt.token_ids.size()), request.max_tokens, limits.max_model_len);
  }
  return 0;
}
