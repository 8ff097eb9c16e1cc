// The typed form of a POST /v1/completions body after parsing and validation (protocol layer).
// Plain data with no JSON types, so routes and the engine adapter can include it cheaply.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace pagedserve {

// logit_bias entries one request may carry: the engine's kMaxLogitBiasEntries (model/sampler.h,
// which the server library does not include; server/engine_backend.cpp checks they agree).
inline constexpr int kMaxLogitBiasEntriesPerRequest = 1024;
// prompt_logprobs one request may ask for at most (as vLLM's default max_logprobs): the engine's
// kMaxScoredLogprobs (model/forward_batch.h; checked in server/engine_backend.cpp).
inline constexpr int kMaxPromptLogprobsPerRequest = 20;

// One prompt: text to tokenize, or token ids given by the client (exactly one is used).
struct CompletionPrompt {
  std::optional<std::string> text;
  std::vector<std::int32_t> token_ids;  // [prompt_len], used when `text` is empty
};

struct CompletionRequest {
  std::vector<CompletionPrompt> prompts;  // one group of `n` choices per prompt, in order
  std::string model;                      // empty when the client sent none
  int max_tokens = 16;  // 0 only with echo: the prompt alone, scored (lm-eval's loglikelihood calls)
  float temperature = 1.0f;
  float top_p = 1.0f;
  int top_k = -1;  // -1 = off
  float min_p = 0.0f;
  int n = 1;  // choices sampled independently per prompt
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  std::vector<std::string> stop;
  std::vector<std::int32_t> stop_token_ids;
  std::optional<std::uint64_t> seed;
  bool echo = false;
  std::optional<int> logprobs;  // top-N alternatives per token; 0 = only the chosen token's logprob
  // vLLM's prompt_logprobs: top-N alternatives at every prompt position (0 = the prompt token's own
  // logprob only); non-streaming only (a stream may ask 0, which is ignored as vLLM does).
  std::optional<int> prompt_logprobs;
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  float repetition_penalty = 1.0f;
  bool ignore_eos = false;
  int min_tokens = 0;
  std::string user;
  std::vector<std::pair<std::int32_t, float>> logit_bias;  // (token id, bias in [-100, 100]), ids ascending
  bool return_tokens_as_token_ids = false;                 // logprobs name tokens "token_id:N"
  bool skip_special_tokens = true;                         // the text leaves special tokens out

  // echo with max_tokens 0 (vLLM's "echo without generation"): the engine runs the prefill and
  // samples one token, which the answer leaves out: text = the prompt, completion_tokens = 0.
  bool echo_only() const { return echo && max_tokens == 0; }
  // What the engine is asked for: at least the one token an echo-only request samples.
  int engine_max_tokens() const { return max_tokens > 0 ? max_tokens : 1; }
  // Whether the engine scores the prompt: prompt_logprobs, or echo with logprobs.
  bool scores_prompt() const { return prompt_logprobs.has_value() || (echo && logprobs.has_value()); }
};

// What validation needs to know about the served model; filled from the backend at request time.
struct ProtocolLimits {
  std::string served_model_name;  // a request naming another model gets 404
  int vocab_size = 0;
  int max_model_len = 0;
  int max_n = 16;
  int max_logprobs =
      20;  // logprobs; prompt_logprobs and echo's prompt logprobs: also <= kMaxPromptLogprobsPerRequest
  int max_prompts = 64;  // prompts in one batched request
};

}  // namespace pagedserve
