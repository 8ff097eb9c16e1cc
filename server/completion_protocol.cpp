#include "server/completion_protocol.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>

namespace pagedserve {
namespace {

using nlohmann::json;
using Error = std::optional<ApiError>;

ApiError bad(std::string message, std::string param) {
  return ApiError::invalid_request(std::move(message), std::move(param));
}

// A field that is absent or null leaves the default in place: OpenAI clients send null for unset.
const json* field(const json& body, const char* name) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) return nullptr;
  return &*it;
}

Error read_bool(const json& body, const char* name, bool& out) {
  const json* v = field(body, name);
  if (!v) return {};
  if (!v->is_boolean()) return bad(std::string("'") + name + "' must be a boolean", name);
  out = v->get<bool>();
  return {};
}

Error read_int(const json& body, const char* name, int& out) {
  const json* v = field(body, name);
  if (!v) return {};
  if (!v->is_number_integer()) return bad(std::string("'") + name + "' must be an integer", name);
  if (v->is_number_unsigned() ? v->get<std::uint64_t>() > std::uint64_t{std::numeric_limits<int>::max()}
                              : (v->get<std::int64_t>() > std::numeric_limits<int>::max() ||
                                 v->get<std::int64_t>() < std::numeric_limits<int>::min())) {
    return bad(std::string("'") + name + "' is out of range", name);
  }
  out = static_cast<int>(v->get<std::int64_t>());
  return {};
}

Error read_float(const json& body, const char* name, float& out) {
  const json* v = field(body, name);
  if (!v) return {};
  if (!v->is_number()) return bad(std::string("'") + name + "' must be a number", name);
  double d = v->get<double>();
  if (!std::isfinite(d)) return bad(std::string("'") + name + "' must be finite", name);
  out = static_cast<float>(d);
  return {};
}

Error read_string(const json& body, const char* name, std::string& out) {
  const json* v = field(body, name);
  if (!v) return {};
  if (!v->is_string()) return bad(std::string("'") + name + "' must be a string", name);
  out = v->get<std::string>();
  return {};
}

Error range(bool ok, const std::string& message, const char* param) {
  if (ok) return {};
  return bad(message, param);
}

// One token id, checked against the vocabulary.
Error read_token_id(const json& v, const char* param, const ProtocolLimits& limits, std::int32_t& out) {
  if (!v.is_number_integer()) return bad(std::string("'") + param + "' token ids must be integers", param);
  if (v.is_number_unsigned() ? v.get<std::uint64_t>() >= std::uint64_t(limits.vocab_size)
                             : (v.get<std::int64_t>() < 0 || v.get<std::int64_t>() >= limits.vocab_size)) {
    return bad("token id " + v.dump() + " in '" + param + "' is outside the vocabulary [0, " +
                   std::to_string(limits.vocab_size) + ")",
               param);
  }
  out = static_cast<std::int32_t>(v.get<std::int64_t>());
  return {};
}

Error read_token_list(const json& list, const char* param, const ProtocolLimits& limits,
                      std::vector<std::int32_t>& out) {
  if (list.empty()) return bad(std::string("'") + param + "' must not be empty", param);
  out.reserve(list.size());
  for (const json& v : list) {
    std::int32_t id = 0;
    if (Error e = read_token_id(v, param, limits, id)) return e;
    out.push_back(id);
  }
  return {};
}

// prompt: "text" | ["text", ...] | [id, ...] | [[id, ...], ...]
Error read_prompts(const json& body, const ProtocolLimits& limits, std::vector<CompletionPrompt>& out) {
  const json* v = field(body, "prompt");
  if (!v) return bad("'prompt' is required", "prompt");
  const std::string shape_message =
      "'prompt' must be a string, a list of strings, a list of token ids, or a list of token-id lists";
  if (v->is_string()) {
    if (v->get_ref<const std::string&>().empty()) return bad("'prompt' must not be empty", "prompt");
    out.push_back({v->get<std::string>(), {}});
    return {};
  }
  if (!v->is_array()) return bad(shape_message, "prompt");
  if (v->empty()) return bad("'prompt' must not be empty", "prompt");
  const json& first = v->front();
  if (first.is_number()) {
    CompletionPrompt prompt;
    if (Error e = read_token_list(*v, "prompt", limits, prompt.token_ids)) return e;
    out.push_back(std::move(prompt));
    return {};
  }
  if (v->size() > std::size_t(limits.max_prompts)) {
    return bad("'prompt' holds " + std::to_string(v->size()) + " prompts; at most " +
                   std::to_string(limits.max_prompts) + " are allowed in one request",
               "prompt");
  }
  for (const json& item : *v) {
    if (first.is_string() && item.is_string()) {
      if (item.get_ref<const std::string&>().empty()) return bad("'prompt' must not be empty", "prompt");
      out.push_back({item.get<std::string>(), {}});
    } else if (first.is_array() && item.is_array()) {
      CompletionPrompt prompt;
      if (Error e = read_token_list(item, "prompt", limits, prompt.token_ids)) return e;
      out.push_back(std::move(prompt));
    } else {
      return bad(shape_message, "prompt");
    }
  }
  return {};
}

Error read_stop(const json& body, CompletionRequest& req) {
  const json* v = field(body, "stop");
  if (!v) return {};
  auto add = [&](const json& s) -> Error {
    if (!s.is_string()) return bad("'stop' must be a string or a list of strings", "stop");
    if (s.get_ref<const std::string&>().empty()) return bad("'stop' strings must not be empty", "stop");
    req.stop.push_back(s.get<std::string>());
    return {};
  };
  if (v->is_array()) {
    for (const json& s : *v) {
      if (Error e = add(s)) return e;
    }
    return {};
  }
  return add(*v);
}

Error read_stop_token_ids(const json& body, const ProtocolLimits& limits, CompletionRequest& req) {
  const json* v = field(body, "stop_token_ids");
  if (!v) return {};
  if (!v->is_array()) return bad("'stop_token_ids' must be a list of token ids", "stop_token_ids");
  for (const json& id : *v) {
    std::int32_t token = 0;
    if (Error e = read_token_id(id, "stop_token_ids", limits, token)) return e;
    req.stop_token_ids.push_back(token);
  }
  return {};
}

Error read_seed(const json& body, CompletionRequest& req) {
  const json* v = field(body, "seed");
  if (!v) return {};
  if (!v->is_number_integer()) return bad("'seed' must be an integer", "seed");
  req.seed =
      v->is_number_unsigned() ? v->get<std::uint64_t>() : static_cast<std::uint64_t>(v->get<std::int64_t>());
  return {};
}

Error read_stream_options(const json& body, CompletionRequest& req) {
  const json* v = field(body, "stream_options");
  if (!v) return {};
  if (!v->is_object()) return bad("'stream_options' must be an object", "stream_options");
  if (!req.stream) return bad("'stream_options' is only allowed when 'stream' is true", "stream_options");
  return read_bool(*v, "include_usage", req.include_usage);
}

// logit_bias: {"<token id>": bias, ...} as OpenAI's; ids in the vocabulary, each once (so "7" and
// "07" together are refused), bias a number in [-100, 100].
Error read_logit_bias(const json& body, const ProtocolLimits& limits, CompletionRequest& req) {
  const json* v = field(body, "logit_bias");
  if (!v) return {};
  if (!v->is_object()) return bad("'logit_bias' must be an object mapping token ids to biases", "logit_bias");
  if (v->size() > std::size_t(kMaxLogitBiasEntriesPerRequest)) {
    return bad("'logit_bias' holds " + std::to_string(v->size()) + " entries; at most " +
                   std::to_string(kMaxLogitBiasEntriesPerRequest) + " are allowed",
               "logit_bias");
  }
  for (const auto& [key, value] : v->items()) {
    const bool digits = !key.empty() && key.size() <= 9 &&
                        std::all_of(key.begin(), key.end(), [](char c) { return c >= '0' && c <= '9'; });
    const long id = digits ? std::stol(key) : -1;
    if (!digits || id >= limits.vocab_size) {
      return bad("'logit_bias' key '" + key + "' is not a token id in the vocabulary [0, " +
                     std::to_string(limits.vocab_size) + ")",
                 "logit_bias");
    }
    if (!value.is_number() || !(std::fabs(value.get<double>()) <= 100.0)) {
      return bad("'logit_bias' value for token " + key + " must be a number in [-100, 100]", "logit_bias");
    }
    req.logit_bias.emplace_back(static_cast<std::int32_t>(id), value.get<float>());
  }
  std::sort(req.logit_bias.begin(), req.logit_bias.end());
  for (std::size_t i = 1; i < req.logit_bias.size(); ++i) {
    if (req.logit_bias[i].first == req.logit_bias[i - 1].first) {
      return bad("'logit_bias' names token " + std::to_string(req.logit_bias[i].first) + " twice",
                 "logit_bias");
    }
  }
  return {};
}

// vLLM's prompt_logprobs (an integer in [0, max]), and echo with logprobs, whose echoed prompt
// tokens carry prompt logprobs too: both bounded by what the engine scores at a prompt position.
// A stream carries no prompt_logprobs: asking for any with stream is refused (0 is accepted and
// ignored, as vLLM does).
Error read_prompt_logprobs(const json& body, const ProtocolLimits& limits, CompletionRequest& req) {
  const int max = std::min(limits.max_logprobs, kMaxPromptLogprobsPerRequest);
  if (req.echo && req.logprobs && *req.logprobs > kMaxPromptLogprobsPerRequest) {
    return bad("'logprobs' with 'echo' must be at most " + std::to_string(kMaxPromptLogprobsPerRequest) +
                   " (the echoed prompt tokens' alternatives), got " + std::to_string(*req.logprobs),
               "logprobs");
  }
  if (!field(body, "prompt_logprobs")) return {};
  int prompt_logprobs = -1;
  if (Error e = read_int(body, "prompt_logprobs", prompt_logprobs)) return e;
  if (Error e = range(prompt_logprobs >= 0 && prompt_logprobs <= max,
                      "'prompt_logprobs' must be between 0 and " + std::to_string(max) + ", got " +
                          std::to_string(prompt_logprobs),
                      "prompt_logprobs"))
    return e;
  if (req.stream) {
    if (prompt_logprobs > 0)
      return bad("'prompt_logprobs' is not available with 'stream': true", "prompt_logprobs");
    return {};
  }
  req.prompt_logprobs = prompt_logprobs;
  return {};
}

// Fields of OpenAI's and vLLM's surface that this server does not implement: refused, never
// silently ignored. best_of equal to n is the same request without ranking, so it is accepted.
Error refuse_unsupported(const json& body, const CompletionRequest& req) {
  if (const json* v = field(body, "suffix");
      v && !(v->is_string() && v->get_ref<const std::string&>().empty())) {
    return bad("'suffix' is not supported (no model served here is trained for insertion)", "suffix");
  }
  if (const json* v = field(body, "best_of")) {
    if (!v->is_number_integer()) return bad("'best_of' must be an integer", "best_of");
    if (v->get<std::int64_t>() != req.n) {
      return bad("'best_of' other than n is not supported (got best_of " + v->dump() + ", n " +
                     std::to_string(req.n) + "): ask for n choices and rank them by their logprobs",
                 "best_of");
    }
  }
  return {};
}

Error read_model(const json& body, const ProtocolLimits& limits, CompletionRequest& req) {
  if (Error e = read_string(body, "model", req.model)) return e;
  if (!req.model.empty() && req.model != limits.served_model_name) {
    ApiError error =
        ApiError::not_found("The model '" + req.model + "' does not exist; this server serves '" +
                            limits.served_model_name + "'");
    error.param = "model";
    error.code = "model_not_found";
    return error;
  }
  return {};
}

Error read_fields(const json& body, const ProtocolLimits& limits, CompletionRequest& req) {
  if (Error e = read_prompts(body, limits, req.prompts)) return e;
  if (Error e = read_model(body, limits, req)) return e;
  if (Error e = read_int(body, "max_tokens", req.max_tokens)) return e;
  if (Error e = range(req.max_tokens >= 0,
                      "'max_tokens' must be at least 1, got " + std::to_string(req.max_tokens), "max_tokens"))
    return e;
  if (Error e = read_float(body, "temperature", req.temperature)) return e;
  if (Error e = range(req.temperature >= 0, "'temperature' must be non-negative", "temperature")) return e;
  if (Error e = read_float(body, "top_p", req.top_p)) return e;
  if (Error e = range(req.top_p > 0 && req.top_p <= 1, "'top_p' must be in (0, 1]", "top_p")) return e;
  if (Error e = read_int(body, "top_k", req.top_k)) return e;
  if (Error e = range(req.top_k >= -1, "'top_k' must be -1 (off) or a positive integer", "top_k")) return e;
  if (req.top_k == 0) req.top_k = -1;
  if (Error e = read_float(body, "min_p", req.min_p)) return e;
  if (Error e = range(req.min_p >= 0 && req.min_p <= 1, "'min_p' must be in [0, 1]", "min_p")) return e;
  if (Error e = read_int(body, "n", req.n)) return e;
  if (Error e = range(
          req.n >= 1 && req.n <= limits.max_n,
          "'n' must be between 1 and " + std::to_string(limits.max_n) + ", got " + std::to_string(req.n),
          "n"))
    return e;
  if (Error e = read_bool(body, "stream", req.stream)) return e;
  if (Error e = read_stream_options(body, req)) return e;
  if (Error e = read_stop(body, req)) return e;
  if (Error e = read_stop_token_ids(body, limits, req)) return e;
  if (Error e = read_seed(body, req)) return e;
  if (Error e = read_bool(body, "echo", req.echo)) return e;
  if (Error e = range(req.max_tokens >= 1 || req.echo,
                      "'max_tokens' must be at least 1 (0 only with 'echo': the prompt alone), got 0", "max_tokens"))
    return e;
  int logprobs = -1;
  if (Error e = read_int(body, "logprobs", logprobs)) return e;
  if (field(body, "logprobs")) {
    if (Error e = range(logprobs >= 0 && logprobs <= limits.max_logprobs,
                        "'logprobs' must be between 0 and " + std::to_string(limits.max_logprobs) + ", got " +
                            std::to_string(logprobs),
                        "logprobs"))
      return e;
    req.logprobs = logprobs;
  }
  if (Error e = read_prompt_logprobs(body, limits, req)) return e;
  if (Error e = read_float(body, "presence_penalty", req.presence_penalty)) return e;
  if (Error e = range(req.presence_penalty >= -2 && req.presence_penalty <= 2,
                      "'presence_penalty' must be in [-2, 2]", "presence_penalty"))
    return e;
  if (Error e = read_float(body, "frequency_penalty", req.frequency_penalty)) return e;
  if (Error e = range(req.frequency_penalty >= -2 && req.frequency_penalty <= 2,
                      "'frequency_penalty' must be in [-2, 2]", "frequency_penalty"))
    return e;
  if (Error e = read_float(body, "repetition_penalty", req.repetition_penalty)) return e;
  if (Error e = range(req.repetition_penalty > 0 && req.repetition_penalty <= 2,
                      "'repetition_penalty' must be in (0, 2]", "repetition_penalty"))
    return e;
  if (Error e = read_bool(body, "ignore_eos", req.ignore_eos)) return e;
  if (Error e = read_int(body, "min_tokens", req.min_tokens)) return e;
  if (Error e = range(req.min_tokens >= 0 && req.min_tokens <= req.max_tokens,
                      "'min_tokens' must be between 0 and max_tokens (" + std::to_string(req.max_tokens) +
                          "), got " + std::to_string(req.min_tokens),
                      "min_tokens"))
    return e;
  if (Error e = read_string(body, "user", req.user)) return e;
  if (Error e = read_logit_bias(body, limits, req)) return e;
  if (Error e = read_bool(body, "return_tokens_as_token_ids", req.return_tokens_as_token_ids)) return e;
  if (Error e = read_bool(body, "skip_special_tokens", req.skip_special_tokens)) return e;
  if (Error e = refuse_unsupported(body, req)) return e;
  return {};
}

}  // namespace

std::variant<CompletionRequest, ApiError> parse_completion_request(std::string_view body,
                                                                   const ProtocolLimits& limits) {
  json parsed = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) {
    return ApiError::invalid_request("The request body is not valid JSON", {}, "invalid_json");
  }
  if (!parsed.is_object()) return ApiError::invalid_request("The request body must be a JSON object");
  CompletionRequest request;
  try {
    if (Error e = read_fields(parsed, limits, request)) return *std::move(e);
  } catch (const json::exception& e) {
    // Only reachable through a type mismatch the readers above did not foresee; still a 400.
    return ApiError::invalid_request(std::string("Invalid request: ") + e.what());
  }
  return request;
}

std::optional<ApiError> check_context_length(int prompt_tokens, int max_tokens, int max_model_len) {
  if (prompt_tokens <= 0) return ApiError::invalid_request("'prompt' must not be empty", "prompt");
  if (static_cast<long long>(prompt_tokens) + max_tokens > max_model_len) {
    return ApiError::invalid_request(
        "This model's maximum context length is " + std::to_string(max_model_len) + " tokens, but " +
            std::to_string(prompt_tokens) + " prompt tokens plus max_tokens " + std::to_string(max_tokens) +
            " = " + std::to_string(static_cast<long long>(prompt_tokens) + max_tokens) + " exceed it",
        "max_tokens", "context_length_exceeded");
  }
  return {};
}

}  // namespace pagedserve
