// The CPU backend behind the ModelRunner seam: LlamaModel's forward into a host logits buffer,
// then one host Sampler per sequence (each keeps its request's random stream, so a seed gives the
// same tokens whatever else is batched); scored prompt positions by score_token().
//
// Owns the logits scratch and the samplers; the model and the KV cache belong to the caller and
// must outlive the runner. Engine thread only.
#pragma once

#include <cstdint>
#include <unordered_map>

#include "core/buffer.h"
#include "kvcache/kv_cache.h"
#include "model/llama_model.h"
#include "model/model_runner.h"

namespace pagedserve {

class CpuModelRunner final : public ModelRunner {
 public:
  CpuModelRunner(LlamaModel& model, KVCache& cache, int max_num_seqs);

  const ModelConfig& config() const noexcept override { return model_.config(); }
  int max_num_batched_tokens() const noexcept override { return model_.max_num_batched_tokens(); }
  int max_num_seqs() const noexcept override { return max_num_seqs_; }

  StepOutput run(const ForwardBatch& batch, std::span<const SampleRow> rows) override;
  void release(std::uint64_t sequence_id) override { samplers_.erase(sequence_id); }

 private:
  LlamaModel& model_;
  KVCache& cache_;
  int max_num_seqs_;
  Buffer logits_;  // [2 x max_num_seqs, vocab] f32: sampled rows, then scored positions
  std::unordered_map<std::uint64_t, Sampler> samplers_;
};

}  // namespace pagedserve
