#include "server/chat_protocol.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>

#include "chat_template/chat_prompt.h"
#include "server/completion_protocol.h"

namespace pagedserve {
namespace {

using nlohmann::json;
using nlohmann::ordered_json;
using Error = std::optional<ApiError>;

ApiError bad(std::string message, std::string param) {
  return ApiError::invalid_request(std::move(message), std::move(param));
}

bool present(const ordered_json& body, const char* name) {
  auto it = body.find(name);
  return it != body.end() && !it->is_null();
}

// content: a string, null (an assistant turn with tool calls), or a list of text parts, which
// are joined with "\n" as vLLM does for templates that expect a string.
Error read_content(ordered_json& message, std::size_t index) {
  const std::string param = "messages[" + std::to_string(index) + "].content";
  auto it = message.find("content");
  if (it == message.end() || it->is_null() || it->is_string()) return {};
  if (!it->is_array()) return bad("'" + param + "' must be a string or a list of content parts", param);
  std::string text;
  bool first = true;
  for (const ordered_json& part : *it) {
    if (!part.is_object() || !part.contains("type") || !part["type"].is_string()) {
      return bad("each part of '" + param + "' must be an object with a 'type'", param);
    }
    const std::string& type = part["type"].get_ref<const std::string&>();
    if (type != "text") {
      return bad("content parts of type '" + type + "' are not supported; this model takes text parts only",
                 param);
    }
    if (!part.contains("text") || !part["text"].is_string())
      return bad("a text part needs a string 'text'", param);
    if (!first) text += "\n";
    first = false;
    text += part["text"].get<std::string>();
  }
  *it = std::move(text);
  return {};
}

Error read_messages(const ordered_json& body, ChatPromptInput& input) {
  auto it = body.find("messages");
  if (it == body.end() || !it->is_array()) return bad("'messages' must be a list of messages", "messages");
  if (it->empty()) return bad("'messages' must not be empty", "messages");
  input.messages = ordered_json::array();
  for (std::size_t i = 0; i < it->size(); ++i) {
    ordered_json message = (*it)[i];
    const std::string param = "messages[" + std::to_string(i) + "]";
    if (!message.is_object()) return bad("'" + param + "' must be an object", param);
    auto role = message.find("role");
    if (role == message.end() || !role->is_string())
      return bad("'" + param + ".role' must be a string", param + ".role");
    const std::string& r = role->get_ref<const std::string&>();
    if (r != "system" && r != "user" && r != "assistant" && r != "tool" && r != "developer") {
      return bad("'" + param + ".role' must be system, user, assistant, tool or developer, got '" + r + "'",
                 param + ".role");
    }
    if (Error e = read_content(message, i)) return e;
    input.messages.push_back(std::move(message));
  }
  return {};
}

Error read_template_fields(const ordered_json& body, ChatPromptInput& input) {
  if (present(body, "tools")) {
    if (!body["tools"].is_array()) return bad("'tools' must be a list", "tools");
    input.tools = body["tools"];
  }
  if (present(body, "chat_template_kwargs")) {
    if (!body["chat_template_kwargs"].is_object()) {
      return bad("'chat_template_kwargs' must be an object", "chat_template_kwargs");
    }
    input.template_kwargs = body["chat_template_kwargs"];
  }
  for (auto [name, out] :
       {std::pair<const char*, bool*>{"add_generation_prompt", &input.add_generation_prompt},
        std::pair<const char*, bool*>{"continue_final_message", &input.continue_final_message}}) {
    if (!present(body, name)) continue;
    if (!body[name].is_boolean()) return bad(std::string("'") + name + "' must be a boolean", name);
    *out = body[name].get<bool>();
  }
  if (input.continue_final_message && input.add_generation_prompt) {
    if (present(body, "add_generation_prompt")) {
      return bad("'continue_final_message' and 'add_generation_prompt' cannot both be true",
                 "continue_final_message");
    }
    input.add_generation_prompt = false;  // continuing the last message is the point of the request
  }
  return {};
}

// Chat's token-count and logprobs fields, rewritten into /v1/completions' names so that one
// parser validates every sampling field. Returns the rewritten body, or an error.
std::variant<ordered_json, ApiError> as_completion_body(const ordered_json& body, int max_model_len,
                                                        bool& max_tokens_given) {
  ordered_json completion = body;
  for (const char* chat_only :
       {"messages", "tools", "tool_choice", "chat_template_kwargs", "add_generation_prompt",
        "continue_final_message", "echo", "logprobs", "top_logprobs", "max_completion_tokens",
        "parallel_tool_calls", "response_format"}) {
    completion.erase(chat_only);
  }
  completion["prompt"] = "chat";  // placeholder: the prompt is rendered from the messages later
  if (present(body, "max_completion_tokens")) completion["max_tokens"] = body["max_completion_tokens"];
  max_tokens_given = present(completion, "max_tokens");
  // Absent: up to the context (set once the prompt length is known); validate against that bound.
  if (!max_tokens_given) completion["max_tokens"] = std::max(1, max_model_len);
  if (present(body, "logprobs")) {
    if (!body["logprobs"].is_boolean()) return bad("'logprobs' must be a boolean", "logprobs");
    if (body["logprobs"].get<bool>())
      completion["logprobs"] = present(body, "top_logprobs") ? body["top_logprobs"] : ordered_json(0);
  }
  if (present(body, "top_logprobs") && !(present(body, "logprobs") && body["logprobs"].get<bool>())) {
    return bad("'top_logprobs' needs 'logprobs': true", "top_logprobs");
  }
  return completion;
}

}  // namespace

std::variant<ChatRequest, ApiError> parse_chat_request(std::string_view body, const ProtocolLimits& limits) {
  ordered_json parsed = ordered_json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded())
    return ApiError::invalid_request("The request body is not valid JSON", {}, "invalid_json");
  if (!parsed.is_object()) return ApiError::invalid_request("The request body must be a JSON object");
  ChatRequest request;
  auto input = std::make_shared<ChatPromptInput>();
  try {
    if (Error e = read_messages(parsed, *input)) return *std::move(e);
    if (Error e = read_template_fields(parsed, *input)) return *std::move(e);
    auto completion_body = as_completion_body(parsed, limits.max_model_len, request.max_tokens_given);
    if (auto* error = std::get_if<ApiError>(&completion_body)) return *error;
    auto completion = parse_completion_request(std::get<ordered_json>(completion_body).dump(), limits);
    if (auto* error = std::get_if<ApiError>(&completion)) {
      if (error->param == "max_tokens" && present(parsed, "max_completion_tokens")) {
        error->param = "max_completion_tokens";
      }
      if (error->param == "logprobs" && present(parsed, "top_logprobs")) error->param = "top_logprobs";
      return *error;
    }
    request.completion = std::move(std::get<CompletionRequest>(completion));
  } catch (const json::exception& e) {
    return ApiError::invalid_request(std::string("Invalid request: ") + e.what());
  }
  request.completion.prompts.clear();
  request.prompt = std::move(input);
  return request;
}

}  // namespace pagedserve
