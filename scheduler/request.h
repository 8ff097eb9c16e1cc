// One generation request as the scheduler sees it: its tokens (prompt, then generated output), how
// many of them have K/V in the cache (num_computed_tokens), its state, stop criteria, pages and
// timings. Prefill, chunked prefill, decode and recompute after preemption are all the same thing:
// num_computed_tokens catching up with num_tokens.
//
// The caller creates a Request and hands it to the Scheduler, which then owns it and is the only
// one to change it (engine thread only) until it returns it through Scheduler::take_finished().
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "kvcache/block_manager.h"
#include "model/sampler.h"

namespace pagedserve {

using RequestId = std::uint64_t;

enum class RequestState : std::uint8_t {
  waiting,    // not admitted yet; holds no pages
  running,    // admitted; holds pages for its computed (and this step's) tokens
  preempted,  // was running, lost its pages; waits at the front of the queue to be recomputed
  finished,   // done; see finish_reason
};

enum class FinishReason : std::uint8_t { stop, length, abort };

std::string_view request_state_name(RequestState state) noexcept;
std::string_view finish_reason_name(FinishReason reason) noexcept;  // "stop", "length", "abort"

struct StopCriteria {
  int max_tokens = 16;  // generated tokens at most (>= 1)
  int min_tokens = 0;   // EOS and stop tokens are ignored before this many are generated
  bool ignore_eos = false;
  std::vector<std::int32_t> eos_token_ids;   // from the tokenizer / generation config
  std::vector<std::int32_t> stop_token_ids;  // user's extra stop tokens (honoured even with ignore_eos)
  std::vector<std::string> stop_strings;     // checked by the engine on text (scheduler/stop_checker.h)
};

using SteadyTime = std::chrono::steady_clock::time_point;

struct RequestTimings {
  SteadyTime arrival;
  std::optional<SteadyTime> first_scheduled;
  std::optional<SteadyTime> first_token;
  std::optional<SteadyTime> finish;
  int num_preemptions = 0;
};

class Request {
 public:
  Request(RequestId id, std::vector<std::int32_t> prompt_ids, SamplingParams sampling, StopCriteria stop,
          SteadyTime arrival = std::chrono::steady_clock::now());

  RequestId id() const noexcept { return id_; }
  const SamplingParams& sampling() const noexcept { return sampling_; }
  const StopCriteria& stop() const noexcept { return stop_; }

  // Prompt then output: the sequence whose K/V the cache holds.
  std::span<const std::int32_t> token_ids() const noexcept { return token_ids_; }
  std::span<const std::int32_t> prompt_ids() const noexcept {
    return std::span<const std::int32_t>(token_ids_).first(static_cast<std::size_t>(num_prompt_tokens_));
  }
  std::span<const std::int32_t> output_ids() const noexcept {
    return std::span<const std::int32_t>(token_ids_).subspan(static_cast<std::size_t>(num_prompt_tokens_));
  }
  int num_prompt_tokens() const noexcept { return num_prompt_tokens_; }
  int num_output_tokens() const noexcept { return num_tokens() - num_prompt_tokens_; }
  int num_tokens() const noexcept { return static_cast<int>(token_ids_.size()); }
  // Tokens whose K/V are in the cache; num_tokens() - num_computed_tokens() are still to compute.
  int num_computed_tokens() const noexcept { return num_computed_tokens_; }
  // Whether this request still needs its prompt positions scored (prompt logprobs): it asks for
  // them and has not produced a token yet (they are handed out with the first one). Such a request
  // computes its whole prompt: it takes nothing from the prefix cache.
  bool scores_prompt() const noexcept {
    return sampling_.prompt_logprobs.has_value() && num_output_tokens() == 0;
  }
  // Prompt tokens whose K/V came from the prefix cache (or a copy of a sibling's partly filled
  // page) when the request was first scheduled (vLLM's num_cached_tokens; a recompute after
  // preemption does not change it).
  int num_cached_prompt_tokens() const noexcept { return num_cached_prompt_tokens_; }

  RequestState state() const noexcept { return state_; }
  bool is_finished() const noexcept { return state_ == RequestState::finished; }
  std::optional<FinishReason> finish_reason() const noexcept { return finish_reason_; }
  const RequestTimings& timings() const noexcept { return timings_; }

  // Pages held; present once the Scheduler has taken the request.
  const SequenceBlocks& blocks() const { return blocks_.value(); }

  // The token-level stop decision after the last output token: stop (EOS or stop token, once
  // min_tokens are out), length (max_tokens, or the context is full at max_model_len), or none.
  std::optional<FinishReason> stop_reason_after_last_token(int max_model_len) const;

 private:
  friend class Scheduler;

  RequestId id_;
  SamplingParams sampling_;
  StopCriteria stop_;
  std::vector<std::int32_t> token_ids_;  // [num_tokens] prompt then output
  int num_prompt_tokens_;
  int num_computed_tokens_ = 0;
  int num_cached_prompt_tokens_ = 0;
  RequestState state_ = RequestState::waiting;
  std::optional<FinishReason> finish_reason_;
  RequestTimings timings_;
  std::optional<SequenceBlocks> blocks_;
};

}  // namespace pagedserve
