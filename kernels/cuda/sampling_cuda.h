// Token sampling on CUDA over a step's logits, one row per sequence that samples: the same
// pipeline as the CPU Sampler (model/sampler.h), so the two backends differ only in their random
// numbers:
//   0. logit_bias: the row's sparse (id, bias) list is added to its logits;
//   1. raw logprobs: log-softmax of the logits as they come (before bias and penalties); the sampled
//      token's logprob and the num_logprobs most likely (id, logprob), most likely first, ties by
//      lower id;
//   2. penalties over the row's history (prompt ids, then output ids): repetition (every id in
//      prompt or output: positive logits divided by it, negative multiplied), then frequency
//      (minus penalty x count in output), then presence (minus penalty once per id in output);
//   3. temperature < kGreedyTemperature (1e-5): argmax (lowest id on ties), no randomness;
//   4. otherwise divide by temperature, keep p >= min_p * p_max, then the top_k most likely, then
//      the smallest most-likely set whose probability reaches top_p, and draw from what is left.
// A score row (score_token >= 0; prompt logprobs) draws nothing: its token is score_token, with
// its raw logprob, its rank (ids whose raw logit is >= its own, as vLLM counts) and the top-N.
// Randomness is counter-based: the uniform draw of a row is a hash of (seed, output_index), so a
// request's tokens depend on its seed and position only, never on the rest of the batch (nor on
// thread timing: the kept set and the draw use exact integer sums of the weights). "Most likely"
// orders by the processed value, ties by lower id (the CPU orders by its float weight, which
// agrees except where two values round to one weight).
//
// Device pointers throughout; no host synchronisation, no allocation; launch sizes depend on
// num_rows and vocab only. Called from the thread that owns the stream.
#pragma once

#include <cstddef>
#include <cstdint>

struct CUstream_st;

namespace pagedserve {

using CudaStream = CUstream_st*;

inline constexpr int kMaxSampleLogprobs = 20;

// One logit_bias entry (plain data; a row's entries are consecutive in the bias array).
struct SamplingLogitBias {
  std::int32_t token = 0;
  float bias = 0.0f;
};

// One sampling row's parameters (plain data, copied to the device as an array).
struct SamplingRowParams {
  float temperature = 1.0f;
  float top_p = 1.0f;  // (0, 1]
  int top_k = -1;      // <= 0: off
  float min_p = 0.0f;  // [0, 1]
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  float repetition_penalty = 1.0f;  // 1: off
  int num_logprobs = 0;             // [0, kMaxSampleLogprobs]
  std::uint64_t seed = 0;
  std::int32_t output_index = 0;   // tokens this request has generated so far (the RNG counter)
  std::int32_t history_begin = 0;  // first id of this row's history in the history array
  std::int32_t num_prompt = 0;     // history[history_begin, + num_prompt): prompt ids
  std::int32_t num_output = 0;     // then num_output output ids; both 0 when no penalty is on
  std::int32_t bias_begin = 0;     // bias[bias_begin, + num_bias): this row's logit_bias, ids unique
  std::int32_t num_bias = 0;
  std::int32_t score_token = -1;  // >= 0 (< vocab): a score row, reporting this id instead of a draw
};

// One row's result (plain data, copied back to the host as an array).
struct SampledTokenRow {
  std::int32_t token = 0;
  float logprob = 0.0f;                      // raw log-softmax of `token`
  std::int32_t top_ids[kMaxSampleLogprobs];  // the num_logprobs most likely raw; -1 past them
  float top_logprobs[kMaxSampleLogprobs];    // (or past the non-NaN logits), with -inf
  std::int32_t rank;                         // score rows: ids whose raw logit is >= the token's; else 0
};

// Scratch bytes sample_tokens_cuda needs for up to `max_rows` rows of `vocab` logits (an int and
// a bit per vocabulary id per row; used by rows with a penalty or a bias; needs no initialisation).
std::size_t sample_tokens_cuda_workspace_bytes(int max_rows, int vocab);

// logits: [num_rows, vocab] f32; rows with a penalty or a bias are left with their biased and
// penalised logits (the temperature is applied on the fly, not stored). rows: [num_rows].
// history: the ids rows point into (may be nullptr when no row has a penalty). bias: the entries
// rows point into (may be nullptr when no row has any; ids outside [0, vocab) are ignored).
// out: [num_rows]. vocab <= 2^22. Throws SetupError on bad arguments or a failed launch;
// num_rows == 0 does nothing.
void sample_tokens_cuda(float* logits, const SamplingRowParams* rows, const std::int32_t* history,
                        const SamplingLogitBias* bias, int num_rows, int vocab, void* workspace,
                        std::size_t workspace_bytes, SampledTokenRow* out, CudaStream stream);

}  // namespace pagedserve
