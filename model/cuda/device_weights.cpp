#include "model/cuda/device_weights.h"

#include <cstdint>
#include <stdexcept>

#include "core/error.h"
#include "kernels/cpu/embedding.h"

namespace pagedserve {

std::size_t DeviceWeights::device_bytes(const ModelConfig& config, DType act) {
  const std::size_t a = dtype_size(act);
  const std::size_t hidden = static_cast<std::size_t>(config.hidden_size);
  const std::size_t q = static_cast<std::size_t>(config.q_size());
  const std::size_t kv = static_cast<std::size_t>(config.kv_size());
  const std::size_t inter = static_cast<std::size_t>(config.intermediate_size);
  const std::size_t vocab = static_cast<std::size_t>(config.vocab_size);
  const std::size_t per_layer = ((q + 2 * kv) * hidden + hidden * q + 3 * inter * hidden) * a;
  const std::size_t tables = (config.tie_word_embeddings ? 1 : 2) * vocab * hidden * a;
  return per_layer * static_cast<std::size_t>(config.num_hidden_layers) + tables;
}

std::size_t DeviceWeights::bytes_read_per_step(const ModelConfig& config, DType act) {
  const std::size_t embedding = static_cast<std::size_t>(config.vocab_size) *
                                static_cast<std::size_t>(config.hidden_size) * dtype_size(act);
  return device_bytes(config, act) - (config.tie_word_embeddings ? 0 : embedding);
}

const void* DeviceWeights::upload_stacked(std::initializer_list<TensorView> parts, DType dtype) {
  std::size_t total = 0;
  for (const TensorView& part : parts) total += static_cast<std::size_t>(part.numel()) * dtype_size(dtype);
  Buffer buffer(total, Device::cuda);
  char* cursor = static_cast<char*>(buffer.data());
  std::vector<std::uint8_t> converted;
  for (const TensorView& part : parts) {
    if (!part.is_contiguous()) throw SetupError("weights upload", "a weight tensor is not contiguous");
    const std::size_t bytes = static_cast<std::size_t>(part.numel()) * dtype_size(dtype);
    if (part.dtype() == dtype) {
      copy_bytes(cursor, Device::cuda, part.data(), Device::cpu, bytes);
    } else {
      converted.resize(bytes);
      convert_elements(part, TensorView(converted.data(), dtype, {part.numel()}));
      copy_bytes(cursor, Device::cuda, converted.data(), Device::cpu, bytes);
    }
    cursor += bytes;
  }
  nbytes_ += total;
  owned_.push_back(std::move(buffer));
  return owned_.back().data();
}

DeviceWeights::DeviceWeights(const ModelConfig& config, const ModelWeights& host, DType act) {
  auto f32 = [this](std::initializer_list<TensorView> parts) {
    return static_cast<const float*>(upload_stacked(parts, DType::f32));
  };
  embed_tokens = upload_stacked({host.embed_tokens}, act);
  lm_head =
      host.lm_head.data() == host.embed_tokens.data() ? embed_tokens : upload_stacked({host.lm_head}, act);
  final_norm = f32({host.final_norm});
  layers.reserve(host.layers.size());
  for (const LayerWeights& w : host.layers) {
    DeviceLayerWeights d;
    d.input_norm = f32({w.input_norm});
    d.qkv_proj = upload_stacked({w.q_proj, w.k_proj, w.v_proj}, act);
    if (config.has_qkv_bias) d.qkv_bias = f32({w.q_bias, w.k_bias, w.v_bias});
    if (config.has_qk_norm) {
      d.q_norm = f32({w.q_norm});
      d.k_norm = f32({w.k_norm});
    }
    d.o_proj = upload_stacked({w.o_proj}, act);
    d.post_attention_norm = f32({w.post_attention_norm});
    d.gate_up_proj = upload_stacked({w.gate_proj, w.up_proj}, act);
    d.down_proj = upload_stacked({w.down_proj}, act);
    layers.push_back(d);
  }
}

}  // namespace pagedserve
