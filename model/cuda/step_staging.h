// One engine step's metadata on its way to the GPU: packed into pinned host memory (token ids,
// positions, slot mapping, the indices of the rows that get logits, the decode and prefill attention
// metadata, the sampling and score rows, their penalty histories and logit_bias lists), then sent
// with one asynchronous copy. The
// device pointers of the packed arrays are valid until the next pack(). Capacity-sized at construction. Owned
// by the CUDA model runner; engine thread only. The caller must not pack() again before the stream has
// finished the previous step's copy (the runner synchronises at every step's end).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "kernels/cuda/sampling_cuda.h"
#include "model/forward_batch.h"
#include "model/model_runner.h"

namespace pagedserve {

// One attention launch's metadata on the device (kernels/attention.h).
struct StagedAttention {
  int num_rows = 0;
  int num_tokens = 0;
  int max_pages_per_seq = 0;
  std::int32_t* query_start_len = nullptr;  // [num_rows + 1]
  std::int32_t* seq_lens = nullptr;         // [num_rows]
  std::int32_t* block_table = nullptr;      // [num_rows, max_pages_per_seq]
};

struct StagedStep {
  std::int32_t* token_ids = nullptr;             // [num_tokens]
  std::int32_t* positions = nullptr;             // [num_tokens]
  std::int32_t* slot_mapping = nullptr;          // [num_tokens]
  std::int32_t* logits_token_indices = nullptr;  // [num_samples + num_scored] (logits_token_indices())
  StagedAttention decode;
  StagedAttention prefill;
  SamplingRowParams* sampling_rows = nullptr;  // [num_samples + num_scored]: sampling rows, then score rows
  std::int32_t* history = nullptr;             // penalty histories the rows point into
  SamplingLogitBias* logit_bias = nullptr;     // logit_bias entries the rows point into
};

class StepStaging {
 public:
  struct Capacity {
    int max_tokens = 0;
    int max_seqs = 0;  // sampling rows; as many score rows again
    int max_pages_per_seq = 0;
    int max_model_len = 0;
  };

  explicit StepStaging(const Capacity& capacity);
  ~StepStaging();
  StepStaging(const StepStaging&) = delete;
  StepStaging& operator=(const StepStaging&) = delete;

  // Packs the batch, the sampling rows and their `params` (completed with their history and bias
  // offsets), then the params of the batch's scored positions: params.size() = rows.size() +
  // batch.scored_positions.size(), the score rows without history or bias. Throws
  // std::invalid_argument when a row has more than kMaxLogitBiasEntries biases.
  void pack(const ForwardBatch& batch, std::span<const SampleRow> rows, std::span<SamplingRowParams> params);
  // Enqueues the copy of what pack() wrote.
  void upload(CUstream_st* stream);

  const StagedStep& device_step() const noexcept { return step_; }

 private:
  // Reserves `bytes` (16-byte aligned) in the packed area; returns the offset.
  std::size_t reserve(std::size_t bytes);
  template <typename T>
  T* place(std::span<const T> values, std::size_t offset);
  std::int32_t* put(const std::vector<std::int32_t>& values);  // reserve + place
  StagedAttention pack_attention(const AttentionBatch& part);

  Capacity capacity_;
  std::size_t capacity_bytes_ = 0;
  std::size_t used_ = 0;
  char* host_ = nullptr;    // pinned
  char* device_ = nullptr;  // cudaMalloc, same layout
  StagedStep step_;
};

}  // namespace pagedserve
