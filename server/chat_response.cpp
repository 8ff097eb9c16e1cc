#include "server/chat_response.h"

#include <nlohmann/json.hpp>

#include "server/logprobs_json.h"

namespace pagedserve {
namespace {

using ordered_json = nlohmann::ordered_json;

ordered_json token_bytes(const std::string& token) {
  ordered_json bytes = ordered_json::array();
  for (unsigned char c : token) bytes.push_back(int(c));
  return bytes;
}

// Chat's logprobs: {"content": [{token, logprob, bytes, top_logprobs: [{token, logprob, bytes}]}]}.
ordered_json logprobs_json(const std::optional<ChoiceLogprobs>& logprobs) {
  if (!logprobs) return nullptr;
  ordered_json content = ordered_json::array();
  for (std::size_t i = 0; i < logprobs->tokens.size(); ++i) {
    ordered_json top = ordered_json::array();
    if (i < logprobs->top_logprobs.size()) {
      for (const auto& [token, lp] : logprobs->top_logprobs[i]) {
        top.push_back({{"token", token}, {"logprob", finite_logprob(lp)}, {"bytes", token_bytes(token)}});
      }
    }
    content.push_back({{"token", logprobs->tokens[i]},
                       {"logprob", finite_logprob(logprobs->token_logprobs[i].value_or(0.0f))},
                       {"bytes", token_bytes(logprobs->tokens[i])},
                       {"top_logprobs", std::move(top)}});
  }
  return ordered_json{{"content", std::move(content)}};
}

ordered_json finish_json(const std::string& reason) {
  return reason.empty() ? ordered_json(nullptr) : ordered_json(reason);
}

ordered_json header_json(const CompletionHeader& header, const char* object) {
  return ordered_json{
      {"id", header.id}, {"object", object}, {"created", header.created}, {"model", header.model}};
}

ordered_json usage_json(const CompletionUsage& usage) {
  return ordered_json{{"prompt_tokens", usage.prompt_tokens},
                      {"completion_tokens", usage.completion_tokens},
                      {"total_tokens", usage.prompt_tokens + usage.completion_tokens},
                      {"prompt_tokens_details", {{"cached_tokens", usage.cached_tokens}}}};
}

std::string dump(const ordered_json& j) {
  return j.dump(-1, ' ', false, ordered_json::error_handler_t::replace);
}

}  // namespace

std::string make_chat_completion_id() { return "chat" + make_completion_id(); }  // "chat" + "cmpl-..."

std::string chat_response_json(const CompletionHeader& header, const std::vector<CompletionChoice>& choices,
                               const CompletionUsage& usage, const std::vector<ParsedToolCalls>* tool_calls) {
  ordered_json body = header_json(header, "chat.completion");
  ordered_json list = ordered_json::array();
  for (std::size_t i = 0; i < choices.size(); ++i) {
    const CompletionChoice& choice = choices[i];
    ordered_json message = {{"role", "assistant"}, {"content", choice.text}};
    if (tool_calls && i < tool_calls->size() && !(*tool_calls)[i].calls.empty()) {
      const ParsedToolCalls& parsed = (*tool_calls)[i];
      message["content"] = parsed.content.empty() ? ordered_json(nullptr) : ordered_json(parsed.content);
      ordered_json calls = ordered_json::array();
      for (const ToolCall& call : parsed.calls) {
        calls.push_back({{"id", call.id},
                         {"type", "function"},
                         {"function", {{"name", call.name}, {"arguments", call.arguments}}}});
      }
      message["tool_calls"] = std::move(calls);
    }
    list.push_back({{"index", choice.index},
                    {"message", std::move(message)},
                    {"logprobs", logprobs_json(choice.logprobs)},
                    {"finish_reason", finish_json(choice.finish_reason)}});
  }
  body["choices"] = std::move(list);
  body["usage"] = usage_json(usage);
  // vLLM's: one list for the request (its choices share the prompt), at the top level.
  if (!choices.empty() && choices.front().prompt_logprobs)
    body["prompt_logprobs"] = prompt_logprobs_json(*choices.front().prompt_logprobs);
  return dump(body);
}

std::string chat_role_chunk_json(const CompletionHeader& header, int index) {
  ordered_json body = header_json(header, "chat.completion.chunk");
  body["choices"] = ordered_json::array({{{"index", index},
                                          {"delta", {{"role", "assistant"}, {"content", ""}}},
                                          {"logprobs", nullptr},
                                          {"finish_reason", nullptr}}});
  return dump(body);
}

std::string chat_chunk_json(const CompletionHeader& header, const CompletionChoice& choice) {
  ordered_json body = header_json(header, "chat.completion.chunk");
  ordered_json delta = ordered_json::object();
  if (!choice.text.empty() || choice.finish_reason.empty()) delta["content"] = choice.text;
  body["choices"] = ordered_json::array(
      {{{"index", choice.index},
        {"delta", std::move(delta)},
        {"logprobs", choice.logprobs && !choice.logprobs->tokens.empty() ? logprobs_json(choice.logprobs)
                                                                         : ordered_json(nullptr)},
        {"finish_reason", finish_json(choice.finish_reason)}}});
  return dump(body);
}

std::string chat_tool_call_chunk_json(const CompletionHeader& header, int index, int tool_index,
                                      const ToolCall& call, bool arguments_part) {
  ordered_json tool_call = {{"index", tool_index}};
  if (arguments_part) {
    tool_call["function"] = {{"arguments", call.arguments}};
  } else {
    tool_call["id"] = call.id;
    tool_call["type"] = "function";
    tool_call["function"] = {{"name", call.name}, {"arguments", ""}};
  }
  ordered_json body = header_json(header, "chat.completion.chunk");
  body["choices"] = ordered_json::array({{{"index", index},
                                          {"delta", {{"tool_calls", ordered_json::array({tool_call})}}},
                                          {"logprobs", nullptr},
                                          {"finish_reason", nullptr}}});
  return dump(body);
}

std::string chat_usage_chunk_json(const CompletionHeader& header, const CompletionUsage& usage) {
  ordered_json body = header_json(header, "chat.completion.chunk");
  body["choices"] = ordered_json::array();
  body["usage"] = usage_json(usage);
  return dump(body);
}

}  // namespace pagedserve
