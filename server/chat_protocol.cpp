#include "server/chat_protocol.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

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

// An assistant turn's tool_calls carry arguments as a JSON string (OpenAI's shape); templates
// expect an object (Qwen's `arguments | tojson`), so a string that holds an object becomes one, as
// vLLM does. Anything else is left for the template to render as it is.
void decode_tool_call_arguments(ordered_json& message) {
  auto calls = message.find("tool_calls");
  if (calls == message.end() || !calls->is_array()) return;
  for (ordered_json& call : *calls) {
    if (!call.is_object() || !call.contains("function") || !call["function"].is_object()) continue;
    ordered_json& function = call["function"];
    auto arguments = function.find("arguments");
    if (arguments == function.end() || !arguments->is_string()) continue;
    ordered_json decoded = ordered_json::parse(arguments->get<std::string>(), nullptr, false);
    if (decoded.is_object()) *arguments = std::move(decoded);
  }
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
    decode_tool_call_arguments(message);
    input.messages.push_back(std::move(message));
  }
  return {};
}

// tools: [{"type": "function", "function": {"name", "description"?, "parameters"?}}]. Fills
// `names` with the function names, for tool_choice.
Error read_tools(const ordered_json& body, ChatPromptInput& input, std::vector<std::string>& names) {
  if (!present(body, "tools")) return {};
  const ordered_json& tools = body["tools"];
  if (!tools.is_array()) return bad("'tools' must be a list", "tools");
  for (std::size_t i = 0; i < tools.size(); ++i) {
    const std::string param = "tools[" + std::to_string(i) + "]";
    const ordered_json& tool = tools[i];
    if (!tool.is_object() || tool.value("type", ordered_json()) != "function") {
      return bad("'" + param + "' must be an object with \"type\": \"function\"", param);
    }
    auto function = tool.find("function");
    if (function == tool.end() || !function->is_object())
      return bad("'" + param + ".function' must be an object", param + ".function");
    auto name = function->find("name");
    if (name == function->end() || !name->is_string() || name->get_ref<const std::string&>().empty())
      return bad("'" + param + ".function.name' must be a non-empty string", param + ".function.name");
    auto parameters = function->find("parameters");
    if (parameters != function->end() && !parameters->is_null() && !parameters->is_object()) {
      return bad("'" + param + ".function.parameters' must be a JSON Schema object",
                 param + ".function.parameters");
    }
    auto description = function->find("description");
    if (description != function->end() && !description->is_null() && !description->is_string()) {
      return bad("'" + param + ".function.description' must be a string", param + ".function.description");
    }
    names.push_back(name->get<std::string>());
  }
  input.tools = tools;
  return {};
}

// tool_choice: "none", "auto", "required" or {"type": "function", "function": {"name"}} naming one
// of the tools. Returns whether the output is to be parsed for tool calls. "required" and a named
// function are passed on but not enforced (no constrained decoding): the output is parsed as for
// "auto".
std::variant<bool, ApiError> read_tool_choice(const ordered_json& body,
                                              const std::vector<std::string>& names) {
  const bool has_tools = !names.empty();
  if (!present(body, "tool_choice")) return has_tools;
  const ordered_json& choice = body["tool_choice"];
  if (choice.is_string()) {
    const std::string& value = choice.get_ref<const std::string&>();
    if (value == "none") return false;
    if (value != "auto" && value != "required")
      return bad("'tool_choice' must be \"none\", \"auto\", \"required\" or a named function", "tool_choice");
  } else if (choice.is_object()) {
    auto function = choice.find("function");
    if (choice.value("type", ordered_json()) != "function" || function == choice.end() ||
        !function->is_object() || !function->contains("name") || !(*function)["name"].is_string()) {
      return bad("'tool_choice' as an object must be {\"type\": \"function\", \"function\": {\"name\": ...}}",
                 "tool_choice");
    }
    const std::string& name = (*function)["name"].get_ref<const std::string&>();
    if (std::find(names.begin(), names.end(), name) == names.end())
      return bad("'tool_choice' names the function '" + name + "', which is not in 'tools'", "tool_choice");
  } else {
    return bad("'tool_choice' must be a string or an object", "tool_choice");
  }
  if (!has_tools) return bad("'tool_choice' needs 'tools'", "tool_choice");
  return true;
}

Error read_template_fields(const ordered_json& body, ChatPromptInput& input, bool& parse_tool_calls) {
  std::vector<std::string> names;
  if (Error e = read_tools(body, input, names)) return e;
  auto choice = read_tool_choice(body, names);
  if (auto* error = std::get_if<ApiError>(&choice)) return *error;
  parse_tool_calls = std::get<bool>(choice);
  if (present(body, "parallel_tool_calls") && !body["parallel_tool_calls"].is_boolean())
    return bad("'parallel_tool_calls' must be a boolean", "parallel_tool_calls");
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
    if (Error e = read_template_fields(parsed, *input, request.parse_tool_calls)) return *std::move(e);
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
