// What the HTTP server needs from the engine, as a small interface (implemented by the adapter in
// server/engine_backend.cpp over scheduler/engine.h, and by scripted test doubles in unit tests).
// The types mirror scheduler/engine.h's RequestSpec / TokenDelta / FinishInfo so the adapter is a
// field-by-field copy; the server never includes engine headers outside that one file.
//
// Threads: every method of CompletionBackend may be called from any thread (HTTP threads).
// GenerationSink callbacks arrive on the engine thread: they must not block and must not call back
// into submit() on that thread; the server's sinks post to the connection's strand.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pagedserve {

using BackendRequestId = std::uint64_t;
using SteadyTime = std::chrono::steady_clock::time_point;

struct GenerationSampling {
  float temperature = 1.0f;  // 0 = greedy
  float top_p = 1.0f;
  int top_k = -1;  // -1 = off
  float min_p = 0.0f;
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  float repetition_penalty = 1.0f;
  std::optional<std::uint64_t> seed;
  int num_logprobs = 0;                                    // top alternatives wanted per token
  std::vector<std::pair<std::int32_t, float>> logit_bias;  // (token id, bias), ids ascending and unique
  // Absent, or the top alternatives wanted at every prompt position (prompt logprobs; the request
  // then computes its whole prompt, without the prefix cache).
  std::optional<int> prompt_logprobs;
};

struct GenerationStop {
  int max_tokens = 16;
  int min_tokens = 0;
  bool ignore_eos = false;
  std::vector<std::int32_t> stop_token_ids;
  std::vector<std::string> stop;  // stop strings; the returned text excludes them
};

// One engine request = one choice of a completion.
struct GenerationSpec {
  std::vector<std::int32_t> prompt_ids;  // [prompt_len]
  GenerationSampling sampling;
  GenerationStop stop;
  bool skip_special_tokens = true;  // the text leaves special tokens out
};

struct GeneratedToken {
  std::int32_t token = 0;
  float logprob = 0.0f;
  std::vector<std::pair<std::int32_t, float>> top_logprobs;  // [num_logprobs] best first
};

// One prompt position's logprob: the prompt token, what the model assigned it after the tokens
// before it, its rank (ids at least as likely, itself included: 1 = most likely) and the most
// likely alternatives there.
struct PromptTokenLogprob {
  std::int32_t token = 0;
  float logprob = 0.0f;
  int rank = 0;
  std::vector<std::pair<std::int32_t, float>> top_logprobs;  // [prompt_logprobs] best first
};

// New output of one request in one engine step: UTF-8-complete text and the tokens behind it.
struct GenerationDelta {
  std::string text;
  std::vector<GeneratedToken> tokens;
  // With the first token, when prompt logprobs were asked: prompt positions 1 .. prompt_len - 1.
  std::vector<PromptTokenLogprob> prompt_logprobs;
};

enum class GenerationFinishReason { stop, length, abort };

struct GenerationTimings {
  SteadyTime arrival{};      // submit() accepted it
  SteadyTime scheduled{};    // first scheduled (end of queueing); epoch value = never
  SteadyTime first_token{};  // first output token sampled; epoch value = never
  SteadyTime finish{};
  int num_preemptions = 0;
};

struct GenerationFinish {
  GenerationFinishReason reason = GenerationFinishReason::stop;
  std::string error;  // non-empty when the engine aborted it for a reason of its own
  int prompt_tokens = 0;
  int completion_tokens = 0;
  int cached_tokens = 0;  // prompt tokens whose K/V came from the prefix cache when first scheduled
  GenerationTimings timings;
};

// Receives one request's outputs. on_finish is called exactly once, last, also after abort().
class GenerationSink {
 public:
  virtual ~GenerationSink() = default;
  virtual void on_delta(const GenerationDelta& delta) = 0;
  virtual void on_finish(const GenerationFinish& finish) = 0;
};

struct SubmitOutcome {
  std::optional<BackendRequestId> id;  // empty: refused, `error` says why (e.g. can never fit)
  std::string error;
  int http_status = 400;  // for a refusal: 400 can never fit, 429 queue full, 503 shutting down
};

// Point-in-time engine figures for /metrics; the token and preemption counts are cumulative.
struct BackendStats {
  int num_running = 0;
  int num_waiting = 0;
  double kv_cache_usage = 0.0;  // fraction in [0, 1]
  std::uint64_t num_preemptions = 0;
  std::uint64_t prompt_tokens = 0;
  std::uint64_t generation_tokens = 0;
  std::uint64_t prefix_cache_queries = 0;  // in tokens, like vLLM
  std::uint64_t prefix_cache_hits = 0;
};

class CompletionBackend {
 public:
  virtual ~CompletionBackend() = default;

  virtual SubmitOutcome submit(GenerationSpec spec, std::shared_ptr<GenerationSink> sink) = 0;
  virtual void abort(BackendRequestId id) = 0;  // unknown or finished ids are ignored
  virtual BackendStats stats() const = 0;

  virtual std::vector<std::int32_t> tokenize(std::string_view text, bool add_special_tokens) const = 0;
  virtual std::string detokenize(std::span<const std::int32_t> ids) const = 0;
  virtual std::string token_text(std::int32_t id) const = 0;  // one token, for logprobs

  virtual int max_model_len() const = 0;
  virtual int vocab_size() const = 0;
};

}  // namespace pagedserve
