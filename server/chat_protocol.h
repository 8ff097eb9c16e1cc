// Parsing and validation of POST /v1/chat/completions bodies. Pure functions, any thread; JSON
// stays in the .cpp. The sampling fields are exactly /v1/completions' (one parser for both);
// chat adds messages, max_completion_tokens, logprobs as a boolean with top_logprobs,
// chat_template_kwargs, add_generation_prompt and continue_final_message, and tools with
// tool_choice (validated; the tools go to the template).
#pragma once

#include <memory>
#include <string_view>
#include <variant>

#include "server/api_error.h"
#include "server/completion_request.h"

namespace pagedserve {

struct ChatPromptInput;  // chat_template/chat_prompt.h

struct ChatRequest {
  CompletionRequest completion;   // sampling, stop, n, stream, logprobs (= top_logprobs); no prompts
  bool max_tokens_given = false;  // absent: generate up to the context length, as OpenAI does
  std::shared_ptr<const ChatPromptInput> prompt;  // messages (text parts joined), tools, template kwargs
  bool parse_tool_calls = false;                  // `tools` given and tool_choice is not "none"
};

std::variant<ChatRequest, ApiError> parse_chat_request(std::string_view body, const ProtocolLimits& limits);

}  // namespace pagedserve
