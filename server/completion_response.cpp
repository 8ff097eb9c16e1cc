#include "server/completion_response.h"

#include <chrono>
#include <nlohmann/json.hpp>
#include <random>

#include "server/logprobs_json.h"

namespace pagedserve {
namespace {

using ordered_json = nlohmann::ordered_json;

ordered_json logprobs_json(const std::optional<ChoiceLogprobs>& logprobs) {
  if (!logprobs) return nullptr;
  ordered_json token_logprobs = ordered_json::array();
  for (const std::optional<float>& lp : logprobs->token_logprobs)
    token_logprobs.push_back(lp ? ordered_json(finite_logprob(*lp)) : ordered_json(nullptr));
  ordered_json top = ordered_json::array();
  for (std::size_t i = 0; i < logprobs->top_logprobs.size(); ++i) {
    if (i < logprobs->token_logprobs.size() && !logprobs->token_logprobs[i]) {
      top.push_back(nullptr);
      continue;
    }
    ordered_json entry = ordered_json::object();
    for (const auto& [token, lp] : logprobs->top_logprobs[i]) entry[token] = finite_logprob(lp);
    top.push_back(std::move(entry));
  }
  return ordered_json{{"tokens", logprobs->tokens},
                      {"token_logprobs", std::move(token_logprobs)},
                      {"top_logprobs", std::move(top)},
                      {"text_offset", logprobs->text_offset}};
}

ordered_json choice_json(const CompletionChoice& choice) {
  ordered_json json{{"index", choice.index},
                    {"text", choice.text},
                    {"logprobs", logprobs_json(choice.logprobs)},
                    {"finish_reason", choice.finish_reason.empty() ? ordered_json(nullptr)
                                                                   : ordered_json(choice.finish_reason)}};
  if (choice.prompt_logprobs) json["prompt_logprobs"] = prompt_logprobs_json(*choice.prompt_logprobs);
  return json;
}

ordered_json usage_json(const CompletionUsage& usage) {
  return ordered_json{{"prompt_tokens", usage.prompt_tokens},
                      {"completion_tokens", usage.completion_tokens},
                      {"total_tokens", usage.prompt_tokens + usage.completion_tokens},
                      {"prompt_tokens_details", {{"cached_tokens", usage.cached_tokens}}}};
}

ordered_json header_json(const CompletionHeader& header) {
  return ordered_json{
      {"id", header.id}, {"object", "text_completion"}, {"created", header.created}, {"model", header.model}};
}

// Token text may end inside a UTF-8 character (a logprobs token); replace rather than throw.
std::string dump(const ordered_json& j) {
  return j.dump(-1, ' ', false, ordered_json::error_handler_t::replace);
}

}  // namespace

std::string make_completion_id() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  static const char* hex = "0123456789abcdef";
  std::string id = "cmpl-";
  for (int part = 0; part < 2; ++part) {
    std::uint64_t bits = rng();
    for (int i = 0; i < 16; ++i, bits >>= 4) id.push_back(hex[bits & 15]);
  }
  return id;
}

std::int64_t unix_time_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string completion_response_json(const CompletionHeader& header,
                                     const std::vector<CompletionChoice>& choices,
                                     const CompletionUsage& usage) {
  ordered_json body = header_json(header);
  ordered_json list = ordered_json::array();
  for (const CompletionChoice& choice : choices) list.push_back(choice_json(choice));
  body["choices"] = std::move(list);
  body["usage"] = usage_json(usage);
  return dump(body);
}

std::string completion_chunk_json(const CompletionHeader& header, const CompletionChoice& choice) {
  ordered_json body = header_json(header);
  body["choices"] = ordered_json::array({choice_json(choice)});
  body["usage"] = nullptr;
  return dump(body);
}

std::string usage_chunk_json(const CompletionHeader& header, const CompletionUsage& usage) {
  ordered_json body = header_json(header);
  body["choices"] = ordered_json::array();
  body["usage"] = usage_json(usage);
  return dump(body);
}

std::string sse_event(std::string_view json) {
  std::string event;
  event.reserve(json.size() + 8);
  event.append("data: ").append(json).append("\n\n");
  return event;
}

}  // namespace pagedserve
