#include "scheduler/request.h"

#include <algorithm>
#include <utility>

namespace pagedserve {

namespace {

bool contains(const std::vector<std::int32_t>& ids, std::int32_t token) {
  return std::find(ids.begin(), ids.end(), token) != ids.end();
}

}  // namespace

std::string_view request_state_name(RequestState state) noexcept {
  switch (state) {
    case RequestState::waiting:
      return "waiting";
    case RequestState::running:
      return "running";
    case RequestState::preempted:
      return "preempted";
    case RequestState::finished:
      return "finished";
  }
  return "?";
}

std::string_view finish_reason_name(FinishReason reason) noexcept {
  switch (reason) {
    case FinishReason::stop:
      return "stop";
    case FinishReason::length:
      return "length";
    case FinishReason::abort:
      return "abort";
  }
  return "?";
}

Request::Request(RequestId id, std::vector<std::int32_t> prompt_ids, SamplingParams sampling,
                 StopCriteria stop, SteadyTime arrival)
    : id_(id),
      sampling_(std::move(sampling)),
      stop_(std::move(stop)),
      token_ids_(std::move(prompt_ids)),
      num_prompt_tokens_(static_cast<int>(token_ids_.size())) {
  timings_.arrival = arrival;
}

std::optional<FinishReason> Request::stop_reason_after_last_token(int max_model_len) const {
  if (num_output_tokens() == 0) return std::nullopt;
  const std::int32_t last = token_ids_.back();
  if (num_output_tokens() >= stop_.min_tokens) {
    if (!stop_.ignore_eos && contains(stop_.eos_token_ids, last)) return FinishReason::stop;
    if (contains(stop_.stop_token_ids, last)) return FinishReason::stop;
  }
  if (num_output_tokens() >= stop_.max_tokens || num_tokens() >= max_model_len) return FinishReason::length;
  return std::nullopt;
}

}  // namespace pagedserve
