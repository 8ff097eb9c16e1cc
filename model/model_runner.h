// The seam between the engine and a backend (DESIGN.md §9): one engine step's ForwardBatch and
// the sampling rows in, one sampled token (+ the logprobs asked for) per row out, and the scored
// prompt positions' logprobs when the batch lists any (prompt logprobs). The engine never
// sees logits or knows where the model runs; a backend (CpuModelRunner, CudaModelRunner) owns the
// model, the KV cache storage's device and its scratch.
//
// Threads: one thread (the engine thread) calls execute() and release(); a runner is not
// thread-safe. Errors inside a step throw (the engine fails that step's requests and goes on).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "model/forward_batch.h"
#include "model/model_config.h"
#include "model/sampler.h"

namespace pagedserve {

// One sequence that samples this step, in the order of ForwardBatch::sample_token_indices.
struct SampleRow {
  std::uint64_t sequence_id = 0;  // stable for the request's life; keys its random stream
  const SamplingParams* params = nullptr;
  std::span<const std::int32_t> prompt_ids;  // for penalties
  std::span<const std::int32_t> output_ids;  // tokens generated so far (size = output index)
};

// What one step returns.
struct StepOutput {
  std::vector<SampledToken> sampled;  // [rows] in row order
  std::vector<ScoredToken> scored;    // [batch.scored_positions] in that order
};

class ModelRunner {
 public:
  virtual ~ModelRunner() = default;

  virtual const ModelConfig& config() const noexcept = 0;
  // Tokens one execute() may carry at most (scratch is sized for it).
  virtual int max_num_batched_tokens() const noexcept = 0;
  // Sampling rows one step may carry at most; a step may also score as many prompt positions
  // (ForwardBatch::scored_positions): the logits scratch holds 2 x max_num_seqs rows.
  virtual int max_num_seqs() const noexcept = 0;

  // Runs the forward over `batch` (this step's K/V written to the runner's cache), samples one
  // token for every entry of batch.sample_token_indices (rows.size() must equal that count) and
  // scores every entry of batch.scored_positions (at most max_num_seqs()). Throws
  // std::invalid_argument on a batch it cannot run (checked before anything is written).
  virtual StepOutput run(const ForwardBatch& batch, std::span<const SampleRow> rows) = 0;

  // run()'s sampled tokens, in row order: for callers whose batches score nothing.
  std::vector<SampledToken> execute(const ForwardBatch& batch, std::span<const SampleRow> rows) {
    return run(batch, rows).sampled;
  }

  // The sequence is finished or aborted: forget its sampling state.
  virtual void release(std::uint64_t sequence_id) = 0;
};

}  // namespace pagedserve
