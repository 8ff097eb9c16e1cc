// Picks the next token of one request from its logits. One Sampler per request: it holds the
// request's random generator, so the same seed gives the same tokens. Engine thread only.
//
// Pipeline (vLLM's order), over a copy of the logits:
//   0. logit_bias: each listed id's bias is added to its logit (OpenAI's logit_bias);
//   1. penalties: repetition (tokens of prompt + output: positive logits divided by it, negative
//      ones multiplied), then frequency (minus penalty x count in output), then presence (minus
//      penalty once for every token present in output);
//   2. temperature 0 (below kGreedyTemperature): argmax, no randomness;
//   3. otherwise divide by temperature, keep tokens with p >= min_p * p_max, then the top_k most
//      likely, then the smallest most-likely set whose probability reaches top_p; sample from what
//      is left, renormalised.
// Logprobs (`logprob`, `top_logprobs`) are the log-softmax of the raw model logits, before
// logit_bias, penalties and temperature (vLLM v1's default "raw_logprobs"): what the model itself assigned.
// Cost is O(vocab) per token: top_k and top_p bin the candidates by logit and sort one bin.
#pragma once

#include <cstdint>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace pagedserve {

// One logit_bias entry: `bias` is added to the logit of `token` before anything else.
struct LogitBias {
  std::int32_t token = 0;
  float bias = 0.0f;  // [-kMaxLogitBias, kMaxLogitBias]

  friend bool operator==(const LogitBias&, const LogitBias&) = default;
};

inline constexpr float kMaxLogitBias = 100.0f;     // OpenAI's range: [-100, 100]
inline constexpr int kMaxLogitBiasEntries = 1024;  // bounds what a step stages for the GPU

struct SamplingParams {
  float temperature = 1.0f;
  float top_p = 1.0f;  // (0, 1]
  int top_k = -1;      // -1 or 0: off
  float min_p = 0.0f;  // [0, 1]
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  float repetition_penalty = 1.0f;    // > 0; 1 = off
  std::optional<std::uint64_t> seed;  // absent: seeded from std::random_device
  int num_logprobs = 0;               // how many top alternatives to report per token
  std::vector<LogitBias> logit_bias;  // ids ascending, each once, ids in [0, vocab)
  // vLLM's prompt_logprobs: absent, or how many top alternatives to report for every prompt
  // position (each position's own token is scored too; the first position has no logprob). The
  // engine computes lm_head for the prompt rows of such requests only (model/forward_batch.h).
  std::optional<int> prompt_logprobs;
};

struct SampledToken {
  std::int32_t token = 0;
  float logprob = 0.0f;                                      // raw log-softmax of `token`
  std::vector<std::pair<std::int32_t, float>> top_logprobs;  // num_logprobs best, most likely first
};

// A known token scored at one position (a prompt token, for prompt logprobs): what the model
// assigned it given the tokens before it.
struct ScoredToken {
  std::int32_t token = 0;
  float logprob = 0.0f;  // raw log-softmax of `token`
  // vLLM's rank: how many ids have a raw logit >= the token's (itself included); 1 = most likely.
  std::int32_t rank = 0;
  std::vector<std::pair<std::int32_t, float>> top_logprobs;  // num_logprobs best, most likely first
};

// Scores `token` against one row of raw logits ([vocab]; token in [0, vocab)): its raw logprob,
// rank and the num_logprobs most likely alternatives, as Sampler::sample reports a sampled token's.
ScoredToken score_token(std::span<const float> logits, std::int32_t token, int num_logprobs);

class Sampler {
 public:
  static constexpr float kGreedyTemperature = 1e-5f;

  // Empty when `params` are usable; otherwise why not (for the protocol layer's 400 answer).
  // The constructor expects valid params (checked with assert only).
  static std::string validation_error(const SamplingParams& params);

  explicit Sampler(const SamplingParams& params);

  // logits: [vocab] raw model output. Ids outside [0, vocab) in prompt/output/logit_bias are ignored.
  SampledToken sample(std::span<const float> logits, std::span<const std::int32_t> prompt_ids,
                      std::span<const std::int32_t> output_ids);

  const SamplingParams& params() const noexcept { return params_; }

  // [vocab] the logits of the last sample() call after logit_bias and penalties (and, unless greedy, divided
  // by temperature). Valid until the next call; for tests and debugging.
  std::span<const float> processed_logits() const noexcept { return processed_; }

 private:
  void apply_penalties(std::span<const std::int32_t> prompt_ids, std::span<const std::int32_t> output_ids);
  std::int32_t sample_random();
  enum class KeepBy : std::uint8_t { count, mass };
  void keep_most_likely(float max_logit, KeepBy by, double amount);
  double uniform();  // [0, 1)

  SamplingParams params_;
  std::mt19937_64 rng_;
  std::vector<float> processed_;  // [vocab] scratch: logits after penalties (and temperature)
  std::vector<float> weights_;    // [vocab] scratch: e^(logit - max logit)
  std::vector<std::pair<float, std::int32_t>> candidates_;  // scratch: (weight, token) still allowed
  std::vector<std::pair<float, std::int32_t>> boundary_;    // scratch: keep_most_likely's boundary bin
  std::vector<double> bin_measure_;                         // scratch: count or mass per logit bin
  std::vector<std::int32_t> counts_;                        // [vocab] scratch, all zero between calls
  std::vector<std::int32_t> touched_;                       // scratch: ids whose counts_ entry is set
};

}  // namespace pagedserve
