// The Llama-family forward (Llama, Qwen2, Qwen3, Mistral) over one flattened engine step on the
// CPU backend: decode rows and prefill chunks together, K/V through the paged cache.
//
// The layer sequence is model/llama_layers.h's, shared with the CUDA backend. Per layer: RMSNorm -> q/k/v
// projections (+bias, Qwen2) -> per-head q/k RMSNorm (Qwen3) -> RoPE at each token's position -> K/V written
// to the cache through slot_mapping -> the decode kernel over the decode rows and the prefill kernel over the
// prefill rows -> output projection
// -> residual -> RMSNorm -> SwiGLU MLP -> residual. Then the final norm and lm_head, only for the
// rows listed in sample_token_indices and scored_positions.
//
// Activations are f32. Attention reads and writes q/out in the KV cache's dtype (bf16 by default,
// f32 for exact tests), so q and the attention output are converted at that boundary.
//
// Ownership and threads: the model owns its weights and its scratch (sized once for
// max_num_batched_tokens); the KV cache belongs to the caller. One thread (the engine thread)
// calls forward(); the kernels fan out over the ThreadPool given at construction, which must
// outlive the model.
#pragma once

#include <cstdint>
#include <filesystem>
#include <variant>
#include <vector>

#include "core/buffer.h"
#include "core/dtype.h"
#include "core/tensor_view.h"
#include "core/thread_pool.h"
#include "kernels/cpu/matmul_warming.h"
#include "kvcache/kv_cache.h"
#include "model/forward_batch.h"
#include "model/model_config.h"
#include "model/model_weights.h"
#include "model/step_times.h"

namespace pagedserve {

// Where the weights come from: a Hugging Face checkpoint directory, or seeded random weights of
// the config's shapes (--load-format dummy).
struct CheckpointWeights {
  std::filesystem::path model_dir;
};
struct DummyWeights {
  std::uint64_t seed = 0;
  DType dtype = DType::bf16;
};
using WeightSource = std::variant<CheckpointWeights, DummyWeights>;

// The host weights of `source` (the checkpoint's mmap, or generated over `pool`).
ModelWeights load_model_weights(const ModelConfig& config, const WeightSource& source, ThreadPool& pool);

// RoPE inverse frequencies of the config (rope_theta, llama3 scaling): [head_dim / 2].
std::vector<float> model_rope_inv_freq(const ModelConfig& config);

class LlamaModel {
 public:
  // Loads (or makes) the weights and allocates scratch for up to `max_num_batched_tokens` tokens
  // per forward. Throws SetupError on a missing or misshapen tensor.
  LlamaModel(const ModelConfig& config, const WeightSource& source, ThreadPool& pool,
             int max_num_batched_tokens = 2048);
  LlamaModel(const ModelConfig& config, ModelWeights weights, ThreadPool& pool,
             int max_num_batched_tokens = 2048);

  // Runs one step: makes the batch's page copies, writes this step's K/V into `cache` and the
  // logits of every sampled token, then of every scored position (logits_token_indices' order).
  // The batch must satisfy forward_batch.h's invariants (token ids < vocab, slots inside the
  // cache, at most max_num_batched_tokens tokens); violations throw std::invalid_argument before
  // anything is written.
  void forward(const ForwardBatch& batch, KVCache& cache,
               const TensorView& logits);  // [batch.num_logits_rows(), vocab] f32

  // From now on every forward adds the wall time of each of its steps to *times (model/
  // step_times.h; the caller owns it); nullptr stops. For benchmarks (model_cpu --step-times).
  void time_steps(StepTimes* times) noexcept { step_times_ = times; }

  const ModelConfig& config() const noexcept { return config_; }
  const ModelWeights& weights() const noexcept { return weights_; }
  int max_num_batched_tokens() const noexcept { return max_tokens_; }

 private:
  friend class CpuForwardStep;  // the layer steps of one forward (llama_model.cpp)

  void run_attention(const AttentionBatch& part, std::int64_t first_token, const TensorView& k_cache,
                     const TensorView& v_cache, bool decode);
  void check_batch(const ForwardBatch& batch, const KVCache& cache, const TensorView& logits) const;

  // Splits rows over the pool for the cheap row-wise kernels (norms, activation, residual).
  template <typename RowFn>
  void for_row_chunks(std::int64_t rows, RowFn&& fn);

  ModelConfig config_;
  ModelWeights weights_;
  ThreadPool& pool_;
  int max_tokens_;
  StepTimes* step_times_ = nullptr;  // time_steps()
  std::vector<float> inv_freq_;  // [head_dim / 2]

  // Scratch, f32 unless noted; T = max_num_batched_tokens.
  Buffer hidden_;         // [T, hidden] the residual stream
  Buffer normed_;         // [T, hidden]
  Buffer q_;              // [T, q_size]
  Buffer k_;              // [T, kv_size]
  Buffer v_;              // [T, kv_size]
  Buffer q_attention_;    // [T, q_size] in the cache dtype (room for f32)
  Buffer out_attention_;  // [T, q_size] in the cache dtype (room for f32)
  Buffer attention_f32_;  // [T, q_size]
  Buffer delta_;          // [T, hidden] a sublayer's output before the residual add
  Buffer gate_;           // [T, intermediate]
  Buffer up_;             // [T, intermediate]
  Buffer rope_cos_;       // [T, head_dim / 2]
  Buffer rope_sin_;       // [T, head_dim / 2]
  Buffer sampled_;        // [T, hidden] final-normed rows that get logits
  Buffer workspace_;      // matmul workspace
  // Each layer's o_proj and gate/up rows, per pool thread, that the workers prefetch while they
  // wait between q/k/v and o_proj (kernels/cpu/matmul_warming.h); rebuilt per layer.
  MatmulWarmPlan warm_plan_;
};

}  // namespace pagedserve
