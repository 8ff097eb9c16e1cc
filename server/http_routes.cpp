#include "server/http_routes.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "chat_template/chat_prompt.h"
#include "server/api_key.h"
#include "server/chat_format.h"
#include "server/chat_protocol.h"
#include "server/completion_protocol.h"

namespace pagedserve {
namespace {

using nlohmann::json;

HttpReply json_reply(const json& body, int status = 200) {
  return HttpReply{status, "application/json", body.dump(-1, ' ', false, json::error_handler_t::replace), {}};
}

ApiError loading_error() {
  return ApiError::unavailable("The model is still loading; retry when /health is 200");
}

std::string_view path_of(std::string_view target) { return target.substr(0, target.find('?')); }

ProtocolLimits limits_for(const ServerState& state, const CompletionBackend& backend) {
  const ServerOptions& o = state.options();
  ProtocolLimits limits;
  limits.served_model_name = o.served_model_name;
  limits.vocab_size = backend.vocab_size();
  limits.max_model_len = backend.max_model_len();
  limits.max_n = o.max_n;
  limits.max_logprobs = o.max_logprobs;
  limits.max_prompts = o.max_prompts;
  return limits;
}

RouteResult completions(const HttpRequestView& request, ServerState& state) {
  auto backend = state.backend();
  if (!backend) return error_reply(loading_error());
  if (state.draining()) return error_reply(ApiError::unavailable("The server is shutting down"));
  auto parsed = parse_completion_request(request.body, limits_for(state, *backend));
  if (auto* error = std::get_if<ApiError>(&parsed)) return error_reply(*error);
  CompletionStart start{std::move(std::get<CompletionRequest>(parsed)), {}, {}};
  for (const CompletionPrompt& prompt : start.request.prompts) {
    std::vector<std::int32_t> ids = prompt.text ? backend->tokenize(*prompt.text, true) : prompt.token_ids;
    if (auto error =
            // Echo only (max_tokens 0) still samples one token, which needs its place.
            check_context_length(int(ids.size()), start.request.engine_max_tokens(), backend->max_model_len())) {
      return error_reply(*error);
    }
    start.prompt_texts.push_back(prompt.text ? *prompt.text
                                             : (start.request.echo ? backend->detokenize(ids) : ""));
    start.prompt_ids.push_back(std::move(ids));
  }
  return start;
}

std::shared_ptr<const ChatFormat> chat_format_of(ServerState& state) {
  std::shared_ptr<const ChatFormat> format = state.chat_format();
  return format ? format : ChatFormat::from_source(std::nullopt);
}

// Messages -> the model's chat template -> prompt ids (the template writes the special tokens,
// so none are added), then the same job as /v1/completions in chat's wire shape.
RouteResult chat_completions(const HttpRequestView& request, ServerState& state) {
  auto backend = state.backend();
  if (!backend) return error_reply(loading_error());
  if (state.draining()) return error_reply(ApiError::unavailable("The server is shutting down"));
  auto parsed = parse_chat_request(request.body, limits_for(state, *backend));
  if (auto* error = std::get_if<ApiError>(&parsed)) return error_reply(*error);
  ChatRequest& chat = std::get<ChatRequest>(parsed);
  std::shared_ptr<const ChatFormat> format = chat_format_of(state);
  auto prompt = format->render(*chat.prompt);
  if (auto* error = std::get_if<ApiError>(&prompt)) return error_reply(*error);
  std::vector<std::int32_t> ids = backend->tokenize(std::get<std::string>(prompt), false);
  if (!chat.max_tokens_given) {
    chat.completion.max_tokens = std::max(1, backend->max_model_len() - int(ids.size()));
    chat.completion.min_tokens = std::min(chat.completion.min_tokens, chat.completion.max_tokens);
  }
  if (auto error =
          check_context_length(int(ids.size()), chat.completion.max_tokens, backend->max_model_len())) {
    if (error->param == "max_tokens") error->param = "messages";
    return error_reply(*error);
  }
  CompletionStart start{std::move(chat.completion), {}, {}, CompletionApi::chat_completions};
  if (chat.parse_tool_calls) start.tool_call_format = format->tool_call_format();
  start.prompt_ids.push_back(std::move(ids));
  start.prompt_texts.emplace_back();
  return start;
}

HttpReply models(ServerState& state) {
  auto backend = state.backend();
  if (!backend) return error_reply(loading_error());
  const std::string& name = state.options().served_model_name;
  json model = {{"id", name},   {"object", "model"},
                {"created", 0}, {"owned_by", "pagedserve"},
                {"root", name}, {"max_model_len", backend->max_model_len()}};
  return json_reply({{"object", "list"}, {"data", json::array({model})}});
}

HttpReply health(ServerState& state) {
  if (!state.backend()) return error_reply(loading_error());
  if (state.draining()) return error_reply(ApiError::unavailable("The server is shutting down"));
  return HttpReply{200, "application/json", "{}", {}};
}

HttpReply metrics(ServerState& state) {
  auto backend = state.backend();
  std::string text =
      backend ? state.metrics().render(backend->stats()) : state.metrics().render_without_backend();
  return HttpReply{200, "text/plain; version=0.0.4; charset=utf-8", std::move(text), {}};
}

// Reads the body as a JSON object, or answers why not.
std::variant<json, ApiError> json_object(std::string_view body) {
  json parsed = json::parse(body, nullptr, false);
  if (parsed.is_discarded())
    return ApiError::invalid_request("The request body is not valid JSON", {}, "invalid_json");
  if (!parsed.is_object()) return ApiError::invalid_request("The request body must be a JSON object");
  return parsed;
}

// {"prompt": text} or, as vLLM's, {"messages": [...]} rendered by the chat template exactly as
// /v1/chat/completions renders them (add_generation_prompt, continue_final_message,
// chat_template_kwargs, tools). add_special_tokens defaults to true for a prompt and to false for
// messages, whose template writes its own.
HttpReply tokenize(const HttpRequestView& request, ServerState& state) {
  auto backend = state.backend();
  if (!backend) return error_reply(loading_error());
  auto body = json_object(request.body);
  if (auto* error = std::get_if<ApiError>(&body)) return error_reply(*error);
  const json& j = std::get<json>(body);
  const bool chat = j.contains("messages");
  auto prompt = j.find("prompt");
  if (chat && prompt != j.end()) {
    return error_reply(ApiError::invalid_request("give either 'prompt' or 'messages', not both", "messages"));
  }
  if (!chat && (prompt == j.end() || !prompt->is_string())) {
    return error_reply(ApiError::invalid_request("'prompt' must be a string (or give 'messages')", "prompt"));
  }
  bool add_special = !chat;
  if (auto it = j.find("add_special_tokens"); it != j.end() && !it->is_null()) {
    if (!it->is_boolean()) {
      return error_reply(
          ApiError::invalid_request("'add_special_tokens' must be a boolean", "add_special_tokens"));
    }
    add_special = it->get<bool>();
  }
  std::string text;
  if (chat) {
    auto parsed = parse_chat_request(request.body, limits_for(state, *backend));
    if (auto* error = std::get_if<ApiError>(&parsed)) return error_reply(*error);
    auto rendered = chat_format_of(state)->render(*std::get<ChatRequest>(parsed).prompt);
    if (auto* error = std::get_if<ApiError>(&rendered)) return error_reply(*error);
    text = std::move(std::get<std::string>(rendered));
  } else {
    text = prompt->get<std::string>();
  }
  std::vector<std::int32_t> ids = backend->tokenize(text, add_special);
  return json_reply({{"tokens", ids}, {"count", ids.size()}, {"max_model_len", backend->max_model_len()}});
}

HttpReply detokenize(const HttpRequestView& request, ServerState& state) {
  auto backend = state.backend();
  if (!backend) return error_reply(loading_error());
  auto body = json_object(request.body);
  if (auto* error = std::get_if<ApiError>(&body)) return error_reply(*error);
  const json& j = std::get<json>(body);
  auto tokens = j.find("tokens");
  if (tokens == j.end() || !tokens->is_array()) {
    return error_reply(ApiError::invalid_request("'tokens' must be a list of token ids", "tokens"));
  }
  std::vector<std::int32_t> ids;
  for (const json& t : *tokens) {
    if (!t.is_number_integer() || t.get<std::int64_t>() < 0 ||
        t.get<std::int64_t>() >= backend->vocab_size() ||
        (t.is_number_unsigned() && t.get<std::uint64_t>() >= std::uint64_t(backend->vocab_size()))) {
      return error_reply(ApiError::invalid_request("token id " + t.dump() +
                                                       " is outside the vocabulary [0, " +
                                                       std::to_string(backend->vocab_size()) + ")",
                                                   "tokens"));
    }
    ids.push_back(std::int32_t(t.get<std::int64_t>()));
  }
  return json_reply({{"prompt", backend->detokenize(ids)}});
}

struct Route {
  std::string_view path;
  std::string_view method;
  bool needs_key;
};

}  // namespace

HttpReply error_reply(const ApiError& error) {
  return HttpReply{error.status, "application/json", error_body_json(error), {}};
}

RouteResult route_request(const HttpRequestView& request, ServerState& state) {
  const ServerOptions& o = state.options();
  const bool open_probe = !o.api_key_for_health_and_metrics;
  static constexpr Route routes[] = {
      {"/v1/completions", "POST", true}, {"/v1/chat/completions", "POST", true},
      {"/v1/models", "GET", true},       {"/health", "GET", false},
      {"/metrics", "GET", false},        {"/tokenize", "POST", true},
      {"/detokenize", "POST", true}};
  std::string_view path = path_of(request.target);
  const Route* route = nullptr;
  for (const Route& r : routes) {
    if (r.path == path) route = &r;
  }
  if (!route) return error_reply(ApiError::not_found("No route for " + std::string(path)));
  if (request.method != route->method) {
    HttpReply reply = error_reply(ApiError::method_not_allowed("Method " + std::string(request.method) +
                                                               " is not allowed on " + std::string(path) +
                                                               "; use " + std::string(route->method)));
    reply.headers.emplace_back("Allow", std::string(route->method));
    return reply;
  }
  if ((route->needs_key || !open_probe) && !authorization_matches(request.authorization, o.api_key)) {
    return error_reply(
        ApiError::unauthorized("Missing or wrong API key: send 'Authorization: Bearer <key>'"));
  }
  if (path == "/v1/completions") return completions(request, state);
  if (path == "/v1/chat/completions") return chat_completions(request, state);
  if (path == "/v1/models") return models(state);
  if (path == "/health") return health(state);
  if (path == "/metrics") return metrics(state);
  if (path == "/tokenize") return tokenize(request, state);
  return detokenize(request, state);
}

}  // namespace pagedserve
