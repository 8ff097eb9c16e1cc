// Serialisation of chat completion responses (OpenAI's chat.completion and
// chat.completion.chunk objects). Pure functions, any thread; JSON stays in the .cpp. The choice
// and usage types are completions' (server/completion_response.h): a chat choice is the same
// text, finish reason and per-token logprobs, shaped differently on the wire.
#pragma once

#include <string>
#include <vector>

#include "server/chat_tool_calls.h"
#include "server/completion_response.h"

namespace pagedserve {

std::string make_chat_completion_id();  // "chatcmpl-" + 32 hex digits; any thread

// The whole non-streaming body: choices[i].message = {"role": "assistant", "content": text}. With
// `tool_calls` (one entry per choice), a choice whose entry has calls gets the entry's content
// (null when empty) and "tool_calls": [{id, type: "function", function: {name, arguments}}]. The
// first choice's prompt_logprobs, when set, become the body's "prompt_logprobs" (vLLM's place).
std::string chat_response_json(const CompletionHeader& header, const std::vector<CompletionChoice>& choices,
                               const CompletionUsage& usage,
                               const std::vector<ParsedToolCalls>* tool_calls = nullptr);

// A stream's first chunk for one choice: delta {"role": "assistant", "content": ""}.
std::string chat_role_chunk_json(const CompletionHeader& header, int index);

// One streamed chunk: delta {"content": text} (or {} with the finish_reason at the end).
std::string chat_chunk_json(const CompletionHeader& header, const CompletionChoice& choice);

// A streamed tool call, in two chunks as OpenAI sends them: first delta.tool_calls [{index, id,
// type, function: {name, arguments: ""}}], then (`arguments_part`) [{index, function: {arguments}}].
std::string chat_tool_call_chunk_json(const CompletionHeader& header, int index, int tool_index,
                                      const ToolCall& call, bool arguments_part);

// The final usage chunk of a stream (stream_options.include_usage): choices [] and usage.
std::string chat_usage_chunk_json(const CompletionHeader& header, const CompletionUsage& usage);

}  // namespace pagedserve
