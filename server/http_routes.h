// Routing and the simple endpoints, on plain strings (no Beast here, so it is unit-testable and
// cheap to include). The session turns a Beast request into HttpRequestView, and a RouteResult
// into a response or a completion job.
//
// Threads: any HTTP thread; state is shared through ServerState (thread-safe).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "server/api_error.h"
#include "server/chat_tool_calls.h"
#include "server/completion_request.h"
#include "server/server_state.h"

namespace pagedserve {

struct HttpRequestView {
  std::string_view method;  // "GET", "POST", ...
  std::string_view target;  // path plus optional query
  std::string_view body;
  std::string_view authorization;  // the Authorization header, empty when absent
};

struct HttpReply {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers (e.g. Allow)
};

// Which OpenAI API a job answers in: text_completion or chat.completion objects.
enum class CompletionApi { completions, chat_completions };

// A validated, tokenized completion ready to be submitted: one entry per prompt.
struct CompletionStart {
  CompletionRequest request;
  std::vector<std::vector<std::int32_t>> prompt_ids;  // [num_prompts][prompt_len]
  std::vector<std::string> prompt_texts;              // for echo
  CompletionApi api = CompletionApi::completions;
  ToolCallFormat tool_call_format = ToolCallFormat::none;  // chat with tools: parse the output's calls
};

using RouteResult = std::variant<HttpReply, CompletionStart>;

RouteResult route_request(const HttpRequestView& request, ServerState& state);

HttpReply error_reply(const ApiError& error);

}  // namespace pagedserve
