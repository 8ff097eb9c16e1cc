#include "model/model_weights.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "core/error.h"
#include "core/half.h"
#include "kernels/cpu/embedding.h"
#include "model/safetensors.h"

namespace pagedserve {
namespace {

std::string shape_string(const TensorView& view) {
  std::string text = "[";
  for (int d = 0; d < view.rank(); ++d) text += (d ? ", " : "") + std::to_string(view.size(d));
  return text + "]";
}

std::string shape_string(std::initializer_list<std::int64_t> shape) {
  std::string text = "[";
  bool first = true;
  for (std::int64_t extent : shape) {
    text += (first ? "" : ", ") + std::to_string(extent);
    first = false;
  }
  return text + "]";
}

// Counter-based random values for dummy weights: value i of tensor t is a hash (splitmix64) of
// (seed, t, i), so any split of the work over threads gives the same weights.
float dummy_value(std::uint64_t stream, std::uint64_t index, float limit) {
  std::uint64_t z = stream + (index + 1) * 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  const float unit = static_cast<float>(z >> 40) * (1.0f / 16777216.0f);  // [0, 1)
  return (2.0f * unit - 1.0f) * limit;
}

}  // namespace

ModelWeights::ModelWeights() = default;
ModelWeights::~ModelWeights() = default;
ModelWeights::ModelWeights(ModelWeights&&) noexcept = default;
ModelWeights& ModelWeights::operator=(ModelWeights&&) noexcept = default;

TensorView ModelWeights::own(Buffer buffer, DType dtype, std::initializer_list<std::int64_t> shape) {
  owned_.push_back(std::move(buffer));
  return owned_.back().view(dtype, shape);
}

std::size_t ModelWeights::bytes_read_per_step() const {
  std::size_t bytes = lm_head.nbytes();
  for (const LayerWeights& layer : layers) {
    bytes += layer.q_proj.nbytes() + layer.k_proj.nbytes() + layer.v_proj.nbytes() + layer.o_proj.nbytes() +
             layer.gate_proj.nbytes() + layer.up_proj.nbytes() + layer.down_proj.nbytes();
  }
  return bytes;
}

ModelWeights ModelWeights::load(const ModelConfig& config, const std::filesystem::path& model_dir) {
  ModelWeights weights;
  weights.checkpoint_ = std::make_unique<SafetensorsCheckpoint>(model_dir);
  const SafetensorsCheckpoint& checkpoint = *weights.checkpoint_;
  const std::string where = model_dir.string();

  auto fetch = [&](const std::string& name, std::initializer_list<std::int64_t> shape) {
    if (!checkpoint.has(name)) throw SetupError(where, "missing tensor " + name);
    const TensorView view = checkpoint.tensor(name);
    bool same = view.rank() == static_cast<int>(shape.size());
    int d = 0;
    for (std::int64_t extent : shape) same = same && view.size(d++) == extent;
    if (!same) {
      throw SetupError(
          where, "tensor " + name + " has shape " + shape_string(view) + ", expected " + shape_string(shape));
    }
    return view;
  };
  // Small vectors become f32 copies so the kernels read one dtype.
  auto fetch_f32 = [&](const std::string& name, std::int64_t size) {
    const TensorView view = fetch(name, {size});
    Buffer buffer(static_cast<std::size_t>(size) * 4, Device::cpu);
    const TensorView f32_view = buffer.view(DType::f32, {size});
    convert_elements(view, f32_view);
    return weights.own(std::move(buffer), DType::f32, {size});
  };

  const std::int64_t hidden = config.hidden_size;
  const std::int64_t q_size = config.q_size();
  const std::int64_t kv_size = config.kv_size();
  const std::int64_t intermediate = config.intermediate_size;
  weights.embed_tokens = fetch("model.embed_tokens.weight", {config.vocab_size, hidden});
  for (int l = 0; l < config.num_hidden_layers; ++l) {
    const std::string prefix = "model.layers." + std::to_string(l) + ".";
    LayerWeights layer;
    layer.input_norm = fetch_f32(prefix + "input_layernorm.weight", hidden);
    layer.q_proj = fetch(prefix + "self_attn.q_proj.weight", {q_size, hidden});
    layer.k_proj = fetch(prefix + "self_attn.k_proj.weight", {kv_size, hidden});
    layer.v_proj = fetch(prefix + "self_attn.v_proj.weight", {kv_size, hidden});
    if (config.has_qkv_bias) {
      layer.q_bias = fetch_f32(prefix + "self_attn.q_proj.bias", q_size);
      layer.k_bias = fetch_f32(prefix + "self_attn.k_proj.bias", kv_size);
      layer.v_bias = fetch_f32(prefix + "self_attn.v_proj.bias", kv_size);
    }
    if (config.has_qk_norm) {
      layer.q_norm = fetch_f32(prefix + "self_attn.q_norm.weight", config.head_dim);
      layer.k_norm = fetch_f32(prefix + "self_attn.k_norm.weight", config.head_dim);
    }
    layer.o_proj = fetch(prefix + "self_attn.o_proj.weight", {hidden, q_size});
    layer.post_attention_norm = fetch_f32(prefix + "post_attention_layernorm.weight", hidden);
    layer.gate_proj = fetch(prefix + "mlp.gate_proj.weight", {intermediate, hidden});
    layer.up_proj = fetch(prefix + "mlp.up_proj.weight", {intermediate, hidden});
    layer.down_proj = fetch(prefix + "mlp.down_proj.weight", {hidden, intermediate});
    weights.layers.push_back(layer);
  }
  weights.final_norm = fetch_f32("model.norm.weight", hidden);
  // Some tied checkpoints still ship lm_head.weight; untied ones must.
  if (!config.tie_word_embeddings || checkpoint.has("lm_head.weight")) {
    weights.lm_head = fetch("lm_head.weight", {config.vocab_size, hidden});
  } else {
    weights.lm_head = weights.embed_tokens;
  }
  return weights;
}

ModelWeights ModelWeights::dummy(const ModelConfig& config, std::uint64_t seed, DType dtype,
                                 ThreadPool* pool) {
  ModelWeights weights;
  std::uint64_t tensor_index = 0;
  auto next_stream = [&] { return seed * 0x2545f4914f6cdd1dull + (++tensor_index << 40); };
  // Uniform in [-a, a] has std a / sqrt(3); HF initialises with std 0.02.
  const float projection_limit = 0.02f * std::sqrt(3.0f);

  auto random_tensor = [&](std::int64_t rows, std::int64_t cols) {
    const std::int64_t count = rows * cols;
    const std::uint64_t stream = next_stream();
    Buffer buffer(static_cast<std::size_t>(count) * dtype_size(dtype), Device::cpu);
    void* data = buffer.data();
    auto fill = [&](std::int64_t begin, std::int64_t end) {
      for (std::int64_t i = begin; i < end; ++i) {
        const float value = dummy_value(stream, static_cast<std::uint64_t>(i), projection_limit);
        switch (dtype) {
          case DType::bf16:
            static_cast<bf16*>(data)[i] = to_bf16(value);
            break;
          case DType::f16:
            static_cast<f16*>(data)[i] = to_f16(value);
            break;
          default:
            static_cast<float*>(data)[i] = value;
            break;
        }
      }
    };
    constexpr std::int64_t kChunk = 1 << 20;
    if (pool == nullptr || count < kChunk) {
      fill(0, count);
    } else {
      pool->parallel_for((count + kChunk - 1) / kChunk,
                         [&](std::int64_t c) { fill(c * kChunk, std::min(count, (c + 1) * kChunk)); });
    }
    return weights.own(std::move(buffer), dtype, {rows, cols});
  };
  // Norm weights near 1 (exactly 1 would hide a missing multiply in tests); biases near 0.
  auto vector_around = [&](std::int64_t size, float center, float spread) {
    const std::uint64_t stream = next_stream();
    Buffer buffer(static_cast<std::size_t>(size) * 4, Device::cpu);
    for (std::int64_t i = 0; i < size; ++i) {
      static_cast<float*>(buffer.data())[i] =
          center + dummy_value(stream, static_cast<std::uint64_t>(i), spread);
    }
    return weights.own(std::move(buffer), DType::f32, {size});
  };

  const std::int64_t hidden = config.hidden_size;
  const std::int64_t q_size = config.q_size();
  const std::int64_t kv_size = config.kv_size();
  const std::int64_t intermediate = config.intermediate_size;
  weights.embed_tokens = random_tensor(config.vocab_size, hidden);
  for (int l = 0; l < config.num_hidden_layers; ++l) {
    LayerWeights layer;
    layer.input_norm = vector_around(hidden, 1.0f, 0.1f);
    layer.q_proj = random_tensor(q_size, hidden);
    layer.k_proj = random_tensor(kv_size, hidden);
    layer.v_proj = random_tensor(kv_size, hidden);
    if (config.has_qkv_bias) {
      layer.q_bias = vector_around(q_size, 0.0f, 0.1f);
      layer.k_bias = vector_around(kv_size, 0.0f, 0.1f);
      layer.v_bias = vector_around(kv_size, 0.0f, 0.1f);
    }
    if (config.has_qk_norm) {
      layer.q_norm = vector_around(config.head_dim, 1.0f, 0.1f);
      layer.k_norm = vector_around(config.head_dim, 1.0f, 0.1f);
    }
    layer.o_proj = random_tensor(hidden, q_size);
    layer.post_attention_norm = vector_around(hidden, 1.0f, 0.1f);
    layer.gate_proj = random_tensor(intermediate, hidden);
    layer.up_proj = random_tensor(intermediate, hidden);
    layer.down_proj = random_tensor(hidden, intermediate);
    weights.layers.push_back(layer);
  }
  weights.final_norm = vector_around(hidden, 1.0f, 0.1f);
  weights.lm_head =
      config.tie_word_embeddings ? weights.embed_tokens : random_tensor(config.vocab_size, hidden);
  return weights;
}

}  // namespace pagedserve
