// Serialisation of completion responses: the non-streaming body and the SSE chunks
// (OpenAI's text_completion objects). Pure functions, any thread; JSON stays in the .cpp.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pagedserve {

// OpenAI's legacy completions logprobs block; all vectors run in parallel, one entry per token.
struct ChoiceLogprobs {
  std::vector<std::string> tokens;
  // Empty for an echoed first prompt token (nothing before it): null, and null top_logprobs.
  std::vector<std::optional<float>> token_logprobs;
  std::vector<std::vector<std::pair<std::string, float>>> top_logprobs;  // [token][alternative]
  std::vector<int> text_offset;  // byte offset of each token's text in the choice text
};

// vLLM's prompt_logprobs entry for one position: {"<id>": {"logprob", "rank", "decoded_token"}}
// for the prompt token and the top alternatives.
struct PromptLogprobEntry {
  std::int32_t token = 0;
  float logprob = 0.0f;
  int rank = 0;  // 1 = most likely
  std::string decoded_token;
};
// One list per prompt position; std::nullopt for the first position (null).
using PromptLogprobs = std::vector<std::optional<std::vector<PromptLogprobEntry>>>;

struct CompletionChoice {
  // A constructor rather than an aggregate: most places give the first four fields only.
  CompletionChoice(int index = 0, std::string text = {},
                   std::optional<ChoiceLogprobs> logprobs = std::nullopt, std::string finish_reason = {},
                   std::optional<PromptLogprobs> prompt_logprobs = std::nullopt)
      : index(index),
        text(std::move(text)),
        logprobs(std::move(logprobs)),
        finish_reason(std::move(finish_reason)),
        prompt_logprobs(std::move(prompt_logprobs)) {}

  int index = 0;
  std::string text;
  std::optional<ChoiceLogprobs> logprobs;
  std::string finish_reason;  // "stop", "length", "abort"; empty while streaming (null)
  // Set when asked: the choice's "prompt_logprobs" (chat: the response's).
  std::optional<PromptLogprobs> prompt_logprobs;
};

struct CompletionUsage {
  int prompt_tokens = 0;
  int completion_tokens = 0;
  int cached_tokens = 0;  // of prompt_tokens, found in the prefix cache (prompt_tokens_details)
};

// Identity shared by a response and all its chunks.
struct CompletionHeader {
  std::string id;            // "cmpl-" + random hex
  std::int64_t created = 0;  // unix seconds
  std::string model;
};

std::string make_completion_id();  // "cmpl-" + 32 hex digits; any thread
std::int64_t unix_time_now();

// The whole non-streaming body.
std::string completion_response_json(const CompletionHeader& header,
                                     const std::vector<CompletionChoice>& choices,
                                     const CompletionUsage& usage);

// One streamed chunk carrying one choice's delta; usage is null.
std::string completion_chunk_json(const CompletionHeader& header, const CompletionChoice& choice);

// The final usage chunk of a stream (stream_options.include_usage): choices [] and usage.
std::string usage_chunk_json(const CompletionHeader& header, const CompletionUsage& usage);

// "data: <json>\n\n"
std::string sse_event(std::string_view json);
inline constexpr std::string_view kSseDone = "data: [DONE]\n\n";

}  // namespace pagedserve
