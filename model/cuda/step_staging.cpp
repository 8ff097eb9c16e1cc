#include "model/cuda/step_staging.h"

#include <cuda_runtime.h>

#include <cstring>
#include <stdexcept>
#include <string>

#include "core/error.h"
#include "kernels/cuda/cuda_check.h"

namespace pagedserve {
namespace {

using cuda_detail::check_cuda;

constexpr std::size_t kAlign = 16;

std::size_t aligned(std::size_t bytes) { return (bytes + kAlign - 1) / kAlign * kAlign; }

bool has_penalty(const SamplingParams& p) {
  return p.presence_penalty != 0.0f || p.frequency_penalty != 0.0f || p.repetition_penalty != 1.0f;
}

}  // namespace

StepStaging::StepStaging(const Capacity& capacity) : capacity_(capacity) {
  const std::size_t t = static_cast<std::size_t>(capacity.max_tokens);
  const std::size_t s = static_cast<std::size_t>(capacity.max_seqs);
  const std::size_t i32 = sizeof(std::int32_t);
  capacity_bytes_ = 3 * aligned(t * i32) + aligned(2 * s * i32) +
                    2 * (2 * aligned((s + 1) * i32) +
                         aligned(s * static_cast<std::size_t>(capacity.max_pages_per_seq) * i32)) +
                    aligned(2 * s * sizeof(SamplingRowParams)) +
                    aligned(s * static_cast<std::size_t>(capacity.max_model_len) * i32) +
                    aligned(s * static_cast<std::size_t>(kMaxLogitBiasEntries) * sizeof(SamplingLogitBias)) +
                    kAlign;
  check_cuda(cudaMallocHost(reinterpret_cast<void**>(&host_), capacity_bytes_),
             "cudaMallocHost(step staging)");
  check_cuda(cudaMalloc(reinterpret_cast<void**>(&device_), capacity_bytes_), "cudaMalloc(step staging)");
}

StepStaging::~StepStaging() {
  if (host_ != nullptr) cudaFreeHost(host_);
  if (device_ != nullptr) cudaFree(device_);
}

std::size_t StepStaging::reserve(std::size_t bytes) {
  const std::size_t offset = used_;
  used_ += aligned(bytes);
  if (used_ > capacity_bytes_) throw std::invalid_argument("StepStaging: step metadata exceeds its capacity");
  return offset;
}

template <typename T>
T* StepStaging::place(std::span<const T> values, std::size_t offset) {
  if (!values.empty()) std::memcpy(host_ + offset, values.data(), values.size_bytes());
  return reinterpret_cast<T*>(device_ + offset);
}

std::int32_t* StepStaging::put(const std::vector<std::int32_t>& values) {
  const std::span<const std::int32_t> span(values);
  return place(span, reserve(span.size_bytes()));
}

StagedAttention StepStaging::pack_attention(const AttentionBatch& part) {
  StagedAttention staged;
  staged.num_rows = part.num_rows;
  staged.num_tokens = part.num_tokens();
  staged.max_pages_per_seq = part.max_pages_per_seq;
  staged.query_start_len = put(part.query_start_len);
  staged.seq_lens = put(part.seq_lens);
  staged.block_table = put(part.block_table);
  return staged;
}

void StepStaging::pack(const ForwardBatch& batch, std::span<const SampleRow> rows,
                       std::span<SamplingRowParams> params) {
  used_ = 0;
  step_.token_ids = put(batch.token_ids);
  step_.positions = put(batch.positions);
  step_.slot_mapping = put(batch.slot_mapping);
  step_.logits_token_indices = put(logits_token_indices(batch));
  step_.decode = pack_attention(batch.decode);
  step_.prefill = pack_attention(batch.prefill);

  // Penalty histories: prompt then output ids of every row that has a penalty on.
  std::size_t history_ids = 0;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    if (has_penalty(*rows[i].params)) history_ids += rows[i].prompt_ids.size() + rows[i].output_ids.size();
  }
  const std::size_t rows_offset = reserve(params.size() * sizeof(SamplingRowParams));
  const std::size_t history_offset = reserve(history_ids * sizeof(std::int32_t));
  auto* history = reinterpret_cast<std::int32_t*>(host_ + history_offset);
  std::int32_t cursor = 0;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    SamplingRowParams& p = params[i];
    p.history_begin = cursor;
    p.num_prompt = 0;
    p.num_output = 0;
    if (!has_penalty(*rows[i].params)) continue;
    p.num_prompt = static_cast<std::int32_t>(rows[i].prompt_ids.size());
    p.num_output = static_cast<std::int32_t>(rows[i].output_ids.size());
    std::memcpy(history + cursor, rows[i].prompt_ids.data(), rows[i].prompt_ids.size_bytes());
    cursor += p.num_prompt;
    std::memcpy(history + cursor, rows[i].output_ids.data(), rows[i].output_ids.size_bytes());
    cursor += p.num_output;
  }
  // logit_bias lists, one after another; LogitBias and SamplingLogitBias are both (id, bias).
  std::size_t bias_entries = 0;
  for (const SampleRow& row : rows) {
    if (row.params->logit_bias.size() > static_cast<std::size_t>(kMaxLogitBiasEntries))
      throw std::invalid_argument("StepStaging: a row has more than kMaxLogitBiasEntries logit_bias entries");
    bias_entries += row.params->logit_bias.size();
  }
  const std::size_t bias_offset = reserve(bias_entries * sizeof(SamplingLogitBias));
  auto* bias = reinterpret_cast<SamplingLogitBias*>(host_ + bias_offset);
  std::int32_t bias_cursor = 0;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    SamplingRowParams& p = params[i];
    p.bias_begin = bias_cursor;
    p.num_bias = static_cast<std::int32_t>(rows[i].params->logit_bias.size());
    for (const LogitBias& entry : rows[i].params->logit_bias) bias[bias_cursor++] = {entry.token, entry.bias};
  }
  for (std::size_t i = rows.size(); i < params.size(); ++i) {
    params[i].history_begin = params[i].num_prompt = params[i].num_output = 0;
    params[i].bias_begin = params[i].num_bias = 0;
  }
  step_.sampling_rows = place(std::span<const SamplingRowParams>(params.data(), params.size()), rows_offset);
  step_.history = reinterpret_cast<std::int32_t*>(device_ + history_offset);
  step_.logit_bias = bias_entries > 0 ? reinterpret_cast<SamplingLogitBias*>(device_ + bias_offset) : nullptr;
}

void StepStaging::upload(CUstream_st* stream) {
  if (used_ == 0) return;
  check_cuda(cudaMemcpyAsync(device_, host_, used_, cudaMemcpyHostToDevice, stream),
             "cudaMemcpyAsync(step metadata)");
}

}  // namespace pagedserve
