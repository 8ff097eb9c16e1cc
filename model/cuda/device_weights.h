// The model's weights in GPU memory, laid out for the CUDA forward: q/k/v projections stacked into
// one [q_size + 2 kv_size, hidden] matrix and gate/up into one [2 intermediate, hidden] matrix
// (one GEMM each), their biases stacked the same way; matrices in the activation dtype (bf16/f16
// kept, f32 converted), norm weights and biases f32. Uploaded once at construction (synchronous
// copies); read-only afterwards. Owned by the CUDA model runner.
#pragma once

#include <cstddef>
#include <vector>

#include "core/buffer.h"
#include "core/dtype.h"
#include "model/model_config.h"
#include "model/model_weights.h"

namespace pagedserve {

struct DeviceLayerWeights {
  const float* input_norm = nullptr;           // [hidden] f32
  const void* qkv_proj = nullptr;              // [q_size + 2 kv_size, hidden] act
  const float* qkv_bias = nullptr;             // [q_size + 2 kv_size] f32, nullptr without QKV bias
  const float* q_norm = nullptr;               // [head_dim] f32, nullptr without q/k norm
  const float* k_norm = nullptr;               // [head_dim] f32, nullptr without q/k norm
  const void* o_proj = nullptr;                // [hidden, q_size] act
  const float* post_attention_norm = nullptr;  // [hidden] f32
  const void* gate_up_proj = nullptr;          // [2 intermediate, hidden] act
  const void* down_proj = nullptr;             // [hidden, intermediate] act
};

class DeviceWeights {
 public:
  // Bytes the weights of `config` take on the device in `act` (for the fit check before upload).
  static std::size_t device_bytes(const ModelConfig& config, DType act);
  // Bytes one decode step streams: every projection and lm_head (the embedding is only gathered).
  static std::size_t bytes_read_per_step(const ModelConfig& config, DType act);

  DeviceWeights(const ModelConfig& config, const ModelWeights& host, DType act);

  std::vector<DeviceLayerWeights> layers;
  const void* embed_tokens = nullptr;  // [vocab, hidden] act
  const void* lm_head = nullptr;       // [vocab, hidden] act; embed_tokens when tied
  const float* final_norm = nullptr;   // [hidden] f32

  std::size_t nbytes() const noexcept { return nbytes_; }

 private:
  // Rows of `parts` (each [rows_i, cols], any float dtype) stacked into one device matrix.
  const void* upload_stacked(std::initializer_list<TensorView> parts, DType dtype);

  std::vector<Buffer> owned_;
  std::size_t nbytes_ = 0;
};

}  // namespace pagedserve
