#include "model/llama_model.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <stdexcept>
#include <string>

#include "kernels/cpu/activation.h"
#include "kernels/cpu/attention_cpu.h"
#include "kernels/cpu/embedding.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/rmsnorm.h"
#include "kernels/cpu/rope.h"

namespace pagedserve {
namespace {

Buffer f32_scratch(std::int64_t rows, std::int64_t cols) {
  return Buffer(static_cast<std::size_t>(rows * cols) * sizeof(float), Device::cpu);
}

// The batch's metadata vectors as i32 views; kernels only read them.
TensorView i32_view(const std::vector<std::int32_t>& values, std::initializer_list<std::int64_t> shape) {
  return TensorView(const_cast<std::int32_t*>(values.data()), DType::i32, shape);
}

std::optional<RopeLlama3Scaling> llama3_scaling(const ModelConfig& config) {
  if (config.rope_scaling.type != RopeScaling::Type::llama3) return std::nullopt;
  return RopeLlama3Scaling{static_cast<float>(config.rope_scaling.factor),
                           static_cast<float>(config.rope_scaling.low_freq_factor),
                           static_cast<float>(config.rope_scaling.high_freq_factor),
                           config.rope_scaling.original_max_position_embeddings};
}

ModelWeights load_weights(const ModelConfig& config, const WeightSource& source, ThreadPool& pool) {
  if (const auto* checkpoint = std::get_if<CheckpointWeights>(&source)) {
    return ModelWeights::load(config, checkpoint->model_dir);
  }
  const auto& dummy = std::get<DummyWeights>(source);
  return ModelWeights::dummy(config, dummy.seed, dummy.dtype, &pool);
}

}  // namespace

LlamaModel::LlamaModel(const ModelConfig& config, const WeightSource& source, ThreadPool& pool,
                       int max_num_batched_tokens)
    : LlamaModel(config, load_weights(config, source, pool), pool, max_num_batched_tokens) {}

LlamaModel::LlamaModel(const ModelConfig& config, ModelWeights weights, ThreadPool& pool,
                       int max_num_batched_tokens)
    : config_(config), weights_(std::move(weights)), pool_(pool), max_tokens_(max_num_batched_tokens) {
  inv_freq_ = rope_inv_freq(config.head_dim, static_cast<float>(config.rope_theta), llama3_scaling(config));
  const std::int64_t t = max_tokens_;
  const std::int64_t hidden = config.hidden_size;
  hidden_ = f32_scratch(t, hidden);
  normed_ = f32_scratch(t, hidden);
  q_ = f32_scratch(t, config.q_size());
  k_ = f32_scratch(t, config.kv_size());
  v_ = f32_scratch(t, config.kv_size());
  q_attention_ = f32_scratch(t, config.q_size());
  out_attention_ = f32_scratch(t, config.q_size());
  attention_f32_ = f32_scratch(t, config.q_size());
  delta_ = f32_scratch(t, hidden);
  gate_ = f32_scratch(t, config.intermediate_size);
  up_ = f32_scratch(t, config.intermediate_size);
  rope_cos_ = f32_scratch(t, config.head_dim / 2);
  rope_sin_ = f32_scratch(t, config.head_dim / 2);
  sampled_ = f32_scratch(t, hidden);
  const std::int64_t widest_k = std::max({hidden, static_cast<std::int64_t>(config.q_size()),
                                          static_cast<std::int64_t>(config.intermediate_size)});
  workspace_ = Buffer(matmul_workspace_floats(t, widest_k, pool.size()) * sizeof(float), Device::cpu);
}

template <typename RowFn>
void LlamaModel::for_row_chunks(std::int64_t rows, RowFn&& fn) {
  const std::int64_t num_chunks =
      std::min<std::int64_t>(rows / 4, static_cast<std::int64_t>(pool_.size()) * 4);
  if (num_chunks <= 1) {
    fn(0, rows);
    return;
  }
  pool_.parallel_for(num_chunks, [&](std::int64_t chunk) {
    fn(rows * chunk / num_chunks, rows * (chunk + 1) / num_chunks);
  });
}

void LlamaModel::check_batch(const ForwardBatch& batch, const KVCache& cache,
                             const TensorView& logits) const {
  const int num_tokens = batch.num_tokens();
  auto fail = [](const std::string& what) { throw std::invalid_argument("LlamaModel::forward: " + what); };
  if (num_tokens > max_tokens_) {
    fail(std::to_string(num_tokens) + " tokens exceed max_num_batched_tokens " + std::to_string(max_tokens_));
  }
  if (static_cast<int>(batch.positions.size()) != num_tokens ||
      static_cast<int>(batch.slot_mapping.size()) != num_tokens) {
    fail("positions and slot_mapping must have one entry per token");
  }
  if (batch.decode.num_tokens() + batch.prefill.num_tokens() != num_tokens) {
    fail("decode and prefill parts do not cover the tokens");
  }
  for (std::int32_t id : batch.token_ids) {
    if (id < 0 || id >= config_.vocab_size)
      fail("token id " + std::to_string(id) + " outside the vocabulary");
  }
  for (std::int32_t position : batch.positions) {
    if (position < 0) fail("negative position");
  }
  for (std::int32_t index : batch.sample_token_indices) {
    if (index < 0 || index >= num_tokens)
      fail("sample index " + std::to_string(index) + " outside the batch");
  }
  const auto num_samples = static_cast<std::int64_t>(batch.sample_token_indices.size());
  if (num_samples > 0 &&
      (logits.rank() != 2 || logits.size(0) != num_samples || logits.size(1) != config_.vocab_size ||
       logits.dtype() != DType::f32 || !logits.is_contiguous())) {
    fail("logits must be f32 [num_samples, vocab]");
  }
  const KVCacheConfig& kv = cache.config();
  if (kv.num_layers != config_.num_hidden_layers || kv.num_kv_heads != config_.num_key_value_heads ||
      kv.head_dim != config_.head_dim || kv.device != Device::cpu) {
    fail("KV cache shape does not match the model");
  }
}

void LlamaModel::forward(const ForwardBatch& batch, KVCache& cache, const TensorView& logits) {
  check_batch(batch, cache, logits);
  const std::int64_t num_tokens = batch.num_tokens();
  const std::int64_t hidden = config_.hidden_size;
  const std::int64_t half = config_.head_dim / 2;
  if (num_tokens == 0) return;

  embedding_lookup(weights_.embed_tokens, batch.token_ids, hidden_.view(DType::f32, {num_tokens, hidden}));
  rope_cos_sin(i32_view(batch.positions, {num_tokens}), TensorView(inv_freq_.data(), DType::f32, {half}),
               rope_cos_.view(DType::f32, {num_tokens, half}),
               rope_sin_.view(DType::f32, {num_tokens, half}));
  for (int layer = 0; layer < config_.num_hidden_layers; ++layer) run_layer(layer, batch, cache, num_tokens);

  const auto num_samples = static_cast<std::int64_t>(batch.sample_token_indices.size());
  if (num_samples == 0) return;
  const TensorView sampled = sampled_.view(DType::f32, {num_samples, hidden});
  const TensorView all_hidden = hidden_.view(DType::f32, {num_tokens, hidden});
  for (std::int64_t s = 0; s < num_samples; ++s) {
    const std::int64_t row = batch.sample_token_indices[static_cast<std::size_t>(s)];
    rms_norm(all_hidden.slice_rows(row, row + 1), weights_.final_norm,
             static_cast<float>(config_.rms_norm_eps), sampled.slice_rows(s, s + 1));
  }
  matmul(sampled, weights_.lm_head, TensorView(), logits,
         workspace_.view(DType::f32, {static_cast<std::int64_t>(workspace_.nbytes() / 4)}), pool_);
}

void LlamaModel::run_layer(int layer_index, const ForwardBatch& batch, KVCache& cache,
                           std::int64_t num_tokens) {
  const LayerWeights& w = weights_.layers[static_cast<std::size_t>(layer_index)];
  const std::int64_t t = num_tokens;
  const std::int64_t hidden = config_.hidden_size;
  const std::int64_t q_size = config_.q_size();
  const std::int64_t kv_size = config_.kv_size();
  const std::int64_t head_dim = config_.head_dim;
  const std::int64_t intermediate = config_.intermediate_size;
  const float eps = static_cast<float>(config_.rms_norm_eps);
  const DType cache_dtype = cache.config().dtype;
  const TensorView workspace =
      workspace_.view(DType::f32, {static_cast<std::int64_t>(workspace_.nbytes() / 4)});

  const TensorView x = hidden_.view(DType::f32, {t, hidden});
  const TensorView normed = normed_.view(DType::f32, {t, hidden});
  const TensorView q = q_.view(DType::f32, {t, q_size});
  const TensorView k = k_.view(DType::f32, {t, kv_size});
  const TensorView v = v_.view(DType::f32, {t, kv_size});
  const TensorView delta = delta_.view(DType::f32, {t, hidden});

  // Attention block.
  for_row_chunks(t, [&](std::int64_t begin, std::int64_t end) {
    rms_norm(x.slice_rows(begin, end), w.input_norm, eps, normed.slice_rows(begin, end));
  });
  matmul_group(normed, {{w.q_proj, w.q_bias, q}, {w.k_proj, w.k_bias, k}, {w.v_proj, w.v_bias, v}}, workspace,
               pool_);
  const TensorView q_heads = q_.view(DType::f32, {t, config_.num_attention_heads, head_dim});
  const TensorView k_heads = k_.view(DType::f32, {t, config_.num_key_value_heads, head_dim});
  const TensorView cos = rope_cos_.view(DType::f32, {t, head_dim / 2});
  const TensorView sin = rope_sin_.view(DType::f32, {t, head_dim / 2});
  for_row_chunks(t, [&](std::int64_t begin, std::int64_t end) {
    if (config_.has_qk_norm) {
      const TensorView q_rows = q_.view(DType::f32, {t * config_.num_attention_heads, head_dim});
      const TensorView k_rows = k_.view(DType::f32, {t * config_.num_key_value_heads, head_dim});
      const std::int64_t qh = config_.num_attention_heads;
      const std::int64_t kh = config_.num_key_value_heads;
      rms_norm(q_rows.slice_rows(begin * qh, end * qh), w.q_norm, eps,
               q_rows.slice_rows(begin * qh, end * qh));
      rms_norm(k_rows.slice_rows(begin * kh, end * kh), w.k_norm, eps,
               k_rows.slice_rows(begin * kh, end * kh));
    }
    apply_rope(q_heads.slice_rows(begin, end), cos.slice_rows(begin, end), sin.slice_rows(begin, end));
    apply_rope(k_heads.slice_rows(begin, end), cos.slice_rows(begin, end), sin.slice_rows(begin, end));
    convert_elements(q.slice_rows(begin, end),
                     q_attention_.view(cache_dtype, {t, q_size}).slice_rows(begin, end));
  });

  const TensorView k_cache = cache.key_cache(layer_index);
  const TensorView v_cache = cache.value_cache(layer_index);
  KVCacheWriteArgs write;
  write.k_new = k_.view(DType::f32, {t, config_.num_key_value_heads, head_dim});
  write.v_new = v_.view(DType::f32, {t, config_.num_key_value_heads, head_dim});
  write.slot_mapping = i32_view(batch.slot_mapping, {t});
  write.k_cache = k_cache;
  write.v_cache = v_cache;
  write_kv_cache(write, pool_);
  run_attention(batch.decode, 0, k_cache, v_cache, /*decode=*/true);
  run_attention(batch.prefill, batch.decode.num_tokens(), k_cache, v_cache, /*decode=*/false);

  const TensorView attention = attention_f32_.view(DType::f32, {t, q_size});
  for_row_chunks(t, [&](std::int64_t begin, std::int64_t end) {
    convert_elements(out_attention_.view(cache_dtype, {t, q_size}).slice_rows(begin, end),
                     attention.slice_rows(begin, end));
  });
  matmul(attention, w.o_proj, TensorView(), delta, workspace, pool_);

  // MLP block.
  for_row_chunks(t, [&](std::int64_t begin, std::int64_t end) {
    add_in_place(x.slice_rows(begin, end), delta.slice_rows(begin, end));
    rms_norm(x.slice_rows(begin, end), w.post_attention_norm, eps, normed.slice_rows(begin, end));
  });
  const TensorView gate = gate_.view(DType::f32, {t, intermediate});
  const TensorView up = up_.view(DType::f32, {t, intermediate});
  matmul_group(normed, {{w.gate_proj, TensorView(), gate}, {w.up_proj, TensorView(), up}}, workspace, pool_);
  for_row_chunks(t, [&](std::int64_t begin, std::int64_t end) {
    silu_mul(gate.slice_rows(begin, end), up.slice_rows(begin, end), gate.slice_rows(begin, end));
  });
  matmul(gate, w.down_proj, TensorView(), delta, workspace, pool_);
  for_row_chunks(t, [&](std::int64_t begin, std::int64_t end) {
    add_in_place(x.slice_rows(begin, end), delta.slice_rows(begin, end));
  });
}

void LlamaModel::run_attention(const AttentionBatch& part, std::int64_t first_token,
                               const TensorView& k_cache, const TensorView& v_cache, bool decode) {
  const std::int64_t rows = part.num_rows;
  const std::int64_t tokens = part.num_tokens();
  if (rows == 0 || tokens == 0) return;
  const std::int64_t kv_heads = config_.num_key_value_heads;
  const std::int64_t group = config_.num_attention_heads / config_.num_key_value_heads;
  const std::int64_t head_dim = config_.head_dim;
  const DType dtype = k_cache.dtype();
  const std::int64_t end = first_token + tokens;
  const std::int64_t all = end;  // views start at token 0; slice to this part's rows
  PagedAttentionArgs args;
  args.q = q_attention_.view(dtype, {all, kv_heads, group, head_dim}).slice_rows(first_token, end);
  args.out = out_attention_.view(dtype, {all, kv_heads, group, head_dim}).slice_rows(first_token, end);
  args.k_cache = k_cache;
  args.v_cache = v_cache;
  args.block_table = i32_view(part.block_table, {rows, part.max_pages_per_seq});
  args.seq_lens = i32_view(part.seq_lens, {rows});
  args.query_start_len = i32_view(part.query_start_len, {rows + 1});
  args.softmax_scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  if (decode) {
    decode_attention(args, pool_);
  } else {
    prefill_attention(args, pool_);
  }
}

}  // namespace pagedserve
