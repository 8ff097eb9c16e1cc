// The weights of a Llama-family model (Llama, Qwen2, Qwen3, Mistral) as views the forward reads,
// loaded from a safetensors checkpoint or made up (--load-format dummy).
//
// Projection weights keep their checkpoint dtype (bf16/f16 are viewed straight from the mmap, no
// copy; f32 checkpoints stay f32, which the exact tests rely on). The small vectors (norm weights,
// QKV biases) are converted to f32 owned buffers. Every view is valid for the lifetime of the
// ModelWeights object; moving it keeps them valid (the mapping and buffers move, not the bytes).
// Made once at startup on one thread, read-only afterwards (any thread may read).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <vector>

#include "core/buffer.h"
#include "core/dtype.h"
#include "core/tensor_view.h"
#include "core/thread_pool.h"
#include "model/model_config.h"

namespace pagedserve {

class SafetensorsCheckpoint;

struct LayerWeights {
  TensorView input_norm;           // [hidden] f32
  TensorView q_proj;               // [q_size, hidden]
  TensorView k_proj;               // [kv_size, hidden]
  TensorView v_proj;               // [kv_size, hidden]
  TensorView q_bias;               // [q_size] f32, empty unless config.has_qkv_bias
  TensorView k_bias;               // [kv_size] f32, empty unless config.has_qkv_bias
  TensorView v_bias;               // [kv_size] f32, empty unless config.has_qkv_bias
  TensorView q_norm;               // [head_dim] f32, empty unless config.has_qk_norm
  TensorView k_norm;               // [head_dim] f32, empty unless config.has_qk_norm
  TensorView o_proj;               // [hidden, q_size]
  TensorView post_attention_norm;  // [hidden] f32
  TensorView gate_proj;            // [intermediate, hidden]
  TensorView up_proj;              // [intermediate, hidden]
  TensorView down_proj;            // [hidden, intermediate]
};

class ModelWeights {
 public:
  // Reads HF names (model.embed_tokens.weight, model.layers.N.self_attn.q_proj.weight, ...) from
  // the checkpoint in `model_dir`. A missing tensor or a wrong shape throws SetupError naming it.
  static ModelWeights load(const ModelConfig& config, const std::filesystem::path& model_dir);

  // Seeded random weights of the config's shapes (uniform with std 0.02 like HF's init; norm
  // weights near 1; biases small) in `dtype` (projections and embeddings). Same seed, same
  // weights, whatever the pool (each value is a hash of seed, tensor and index). `pool` (optional)
  // spreads the generation of a real-size model over its threads.
  static ModelWeights dummy(const ModelConfig& config, std::uint64_t seed, DType dtype = DType::bf16,
                            ThreadPool* pool = nullptr);

  ModelWeights();
  ~ModelWeights();
  ModelWeights(ModelWeights&&) noexcept;
  ModelWeights& operator=(ModelWeights&&) noexcept;

  TensorView embed_tokens;  // [vocab, hidden]
  std::vector<LayerWeights> layers;
  TensorView final_norm;  // [hidden] f32
  TensorView lm_head;     // [vocab, hidden]; the same memory as embed_tokens when tied

  // Bytes of the projection weights and lm_head: what one decode step streams from memory.
  std::size_t bytes_read_per_step() const;

 private:
  TensorView own(Buffer buffer, DType dtype, std::initializer_list<std::int64_t> shape);

  std::unique_ptr<SafetensorsCheckpoint> checkpoint_;  // the mmap the views point into
  std::vector<Buffer> owned_;                          // converted and dummy tensors
};

}  // namespace pagedserve
