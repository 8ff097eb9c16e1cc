#include "model/llama_model.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>

#include "kernels/cpu/activation.h"
#include "kernels/cpu/attention_cpu.h"
#include "kernels/cpu/embedding.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/rmsnorm.h"
#include "kernels/cpu/rope.h"
#include "model/llama_layers.h"

namespace pagedserve {
namespace {

// Bytes of its own o_proj and gate/up rows each pool worker prefetches per layer while it waits
// for o_proj (post_warming below): o_proj's share of a thread on 16 threads is ~100 KB and a
// worker has ~20-30 us there, so it rarely gets through this much; half an L2 of 1 MiB at most.
constexpr std::int64_t kWarmBytesPerThread = 512 * 1024;

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

}  // namespace

ModelWeights load_model_weights(const ModelConfig& config, const WeightSource& source, ThreadPool& pool) {
  if (const auto* checkpoint = std::get_if<CheckpointWeights>(&source)) {
    return ModelWeights::load(config, checkpoint->model_dir);
  }
  const auto& dummy = std::get<DummyWeights>(source);
  return ModelWeights::dummy(config, dummy.seed, dummy.dtype, &pool);
}

std::vector<float> model_rope_inv_freq(const ModelConfig& config) {
  return rope_inv_freq(config.head_dim, static_cast<float>(config.rope_theta), llama3_scaling(config));
}

LlamaModel::LlamaModel(const ModelConfig& config, const WeightSource& source, ThreadPool& pool,
                       int max_num_batched_tokens)
    : LlamaModel(config, load_model_weights(config, source, pool), pool, max_num_batched_tokens) {}

LlamaModel::LlamaModel(const ModelConfig& config, ModelWeights weights, ThreadPool& pool,
                       int max_num_batched_tokens)
    : config_(config),
      weights_(std::move(weights)),
      pool_(pool),
      max_tokens_(max_num_batched_tokens),
      warm_plan_(pool.size(), kWarmBytesPerThread) {
  inv_freq_ = model_rope_inv_freq(config);
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
  check_forward_batch(batch, config_.vocab_size, max_tokens_, "LlamaModel::forward");
  auto fail = [](const std::string& what) { throw std::invalid_argument("LlamaModel::forward: " + what); };
  const std::int64_t num_rows = batch.num_logits_rows();
  if (num_rows > 0 &&
      (logits.rank() != 2 || logits.size(0) != num_rows || logits.size(1) != config_.vocab_size ||
       logits.dtype() != DType::f32 || !logits.is_contiguous())) {
    fail("logits must be f32 [num_samples + num_scored, vocab]");
  }
  if (num_rows > max_tokens_) fail("more logits rows than max_num_batched_tokens");
  for (const PageCopy& copy : batch.page_copies) (void)cache.copy_ranges(copy);  // throws on a bad page
  const KVCacheConfig& kv = cache.config();
  if (kv.num_layers != config_.num_hidden_layers || kv.num_kv_heads != config_.num_key_value_heads ||
      kv.head_dim != config_.head_dim || kv.device != Device::cpu) {
    fail("KV cache shape does not match the model");
  }
}

// One CPU forward over a batch: the steps of run_llama_layers (model/llama_layers.h) on the
// model's f32 scratch. Lives for one forward() call.
class CpuForwardStep {
 public:
  ~CpuForwardStep() { withdraw_warming(); }
  CpuForwardStep(const CpuForwardStep&) = delete;
  CpuForwardStep& operator=(const CpuForwardStep&) = delete;

  CpuForwardStep(LlamaModel& model, const ForwardBatch& batch, KVCache& cache, const TensorView& logits)
      : m_(model),
        config_(model.config_),
        batch_(batch),
        cache_(cache),
        logits_(logits),
        t_(batch.num_tokens()),
        x_(m_.hidden_.view(DType::f32, {t_, config_.hidden_size})),
        normed_(m_.normed_.view(DType::f32, {t_, config_.hidden_size})),
        delta_(m_.delta_.view(DType::f32, {t_, config_.hidden_size})),
        gate_(m_.gate_.view(DType::f32, {t_, config_.intermediate_size})),
        up_(m_.up_.view(DType::f32, {t_, config_.intermediate_size})),
        workspace_(m_.workspace_.view(DType::f32, {static_cast<std::int64_t>(m_.workspace_.nbytes() / 4)})),
        eps_(static_cast<float>(config_.rms_norm_eps)),
        cache_dtype_(cache.config().dtype) {}

  void embed() {
    const std::int64_t half = config_.head_dim / 2;
    embedding_lookup(m_.weights_.embed_tokens, batch_.token_ids, x_);
    rope_cos_sin(i32_view(batch_.positions, {t_}), TensorView(m_.inv_freq_.data(), DType::f32, {half}),
                 m_.rope_cos_.view(DType::f32, {t_, half}), m_.rope_sin_.view(DType::f32, {t_, half}));
  }

  void attention_norm(int layer) {
    const LayerWeights& w = weights(layer);
    m_.for_row_chunks(t_, [&](std::int64_t begin, std::int64_t end) {
      if (layer > 0) add_in_place(x_.slice_rows(begin, end), delta_.slice_rows(begin, end));
      rms_norm(x_.slice_rows(begin, end), w.input_norm, eps_, normed_.slice_rows(begin, end));
    });
  }

  void qkv_projection(int layer) {
    const LayerWeights& w = weights(layer);
    matmul_group(normed_,
                 {{w.q_proj, w.q_bias, m_.q_.view(DType::f32, {t_, config_.q_size()})},
                  {w.k_proj, w.k_bias, m_.k_.view(DType::f32, {t_, config_.kv_size()})},
                  {w.v_proj, w.v_bias, m_.v_.view(DType::f32, {t_, config_.kv_size()})}},
                 workspace_, m_.pool_);
    post_warming(layer);
  }

  // The workers wait from here until o_proj: RoPE and the cache write run on the caller, and
  // decode attention over few rows makes fewer tasks than threads. Meanwhile they prefetch their
  // parts of o_proj and gate/up (kernels/cpu/matmul_warming.h); withdrawn before gate/up runs.
  void post_warming(int layer) {
    if (m_.pool_.size() == 1) return;  // no workers
    const LayerWeights& w = weights(layer);
    MatmulWarmPlan& plan = m_.warm_plan_;
    plan.clear();
    plan.add(t_, {w.o_proj});
    plan.add(t_, {w.gate_proj, w.up_proj});
    m_.pool_.post_spare_work(&plan.spare_work());
    warming_ = true;
  }

  void withdraw_warming() {
    if (!warming_) return;
    m_.pool_.post_spare_work(nullptr);
    warming_ = false;
  }

  void position_and_cache(int layer) {
    const LayerWeights& w = weights(layer);
    const std::int64_t head_dim = config_.head_dim;
    const std::int64_t qh = config_.num_attention_heads;
    const std::int64_t kh = config_.num_key_value_heads;
    const TensorView q = m_.q_.view(DType::f32, {t_, config_.q_size()});
    const TensorView q_heads = m_.q_.view(DType::f32, {t_, qh, head_dim});
    const TensorView k_heads = m_.k_.view(DType::f32, {t_, kh, head_dim});
    const TensorView cos = m_.rope_cos_.view(DType::f32, {t_, head_dim / 2});
    const TensorView sin = m_.rope_sin_.view(DType::f32, {t_, head_dim / 2});
    m_.for_row_chunks(t_, [&](std::int64_t begin, std::int64_t end) {
      if (config_.has_qk_norm) {
        const TensorView q_rows = m_.q_.view(DType::f32, {t_ * qh, head_dim});
        const TensorView k_rows = m_.k_.view(DType::f32, {t_ * kh, head_dim});
        rms_norm(q_rows.slice_rows(begin * qh, end * qh), w.q_norm, eps_,
                 q_rows.slice_rows(begin * qh, end * qh));
        rms_norm(k_rows.slice_rows(begin * kh, end * kh), w.k_norm, eps_,
                 k_rows.slice_rows(begin * kh, end * kh));
      }
      apply_rope(q_heads.slice_rows(begin, end), cos.slice_rows(begin, end), sin.slice_rows(begin, end));
      apply_rope(k_heads.slice_rows(begin, end), cos.slice_rows(begin, end), sin.slice_rows(begin, end));
      convert_elements(q.slice_rows(begin, end),
                       m_.q_attention_.view(cache_dtype_, {t_, config_.q_size()}).slice_rows(begin, end));
    });
    KVCacheWriteArgs write;
    write.k_new = k_heads;
    write.v_new = m_.v_.view(DType::f32, {t_, kh, head_dim});
    write.slot_mapping = i32_view(batch_.slot_mapping, {t_});
    write.k_cache = cache_.key_cache(layer);
    write.v_cache = cache_.value_cache(layer);
    write_kv_cache(write, m_.pool_);
  }

  void attention(int layer) {
    const TensorView k_cache = cache_.key_cache(layer);
    const TensorView v_cache = cache_.value_cache(layer);
    m_.run_attention(batch_.decode, 0, k_cache, v_cache, /*decode=*/true);
    m_.run_attention(batch_.prefill, batch_.decode.num_tokens(), k_cache, v_cache, /*decode=*/false);
  }

  void output_projection(int layer) {
    const TensorView attention = m_.attention_f32_.view(DType::f32, {t_, config_.q_size()});
    m_.for_row_chunks(t_, [&](std::int64_t begin, std::int64_t end) {
      convert_elements(m_.out_attention_.view(cache_dtype_, {t_, config_.q_size()}).slice_rows(begin, end),
                       attention.slice_rows(begin, end));
    });
    matmul(attention, weights(layer).o_proj, TensorView(), delta_, workspace_, m_.pool_);
  }

  void mlp_norm(int layer) {
    const LayerWeights& w = weights(layer);
    m_.for_row_chunks(t_, [&](std::int64_t begin, std::int64_t end) {
      add_in_place(x_.slice_rows(begin, end), delta_.slice_rows(begin, end));
      rms_norm(x_.slice_rows(begin, end), w.post_attention_norm, eps_, normed_.slice_rows(begin, end));
    });
  }

  void gate_up_projection(int layer) {
    withdraw_warming();
    const LayerWeights& w = weights(layer);
    matmul_group(normed_, {{w.gate_proj, TensorView(), gate_}, {w.up_proj, TensorView(), up_}}, workspace_,
                 m_.pool_);
  }

  void activation() {
    m_.for_row_chunks(t_, [&](std::int64_t begin, std::int64_t end) {
      silu_mul(gate_.slice_rows(begin, end), up_.slice_rows(begin, end), gate_.slice_rows(begin, end));
    });
  }

  void down_projection(int layer) {
    matmul(gate_, weights(layer).down_proj, TensorView(), delta_, workspace_, m_.pool_);
  }

  void final_norm_and_logits() {
    m_.for_row_chunks(t_, [&](std::int64_t begin, std::int64_t end) {
      add_in_place(x_.slice_rows(begin, end), delta_.slice_rows(begin, end));
    });
    const std::vector<std::int32_t> rows = logits_token_indices(batch_);
    const auto num_rows = static_cast<std::int64_t>(rows.size());
    if (num_rows == 0) return;
    const TensorView sampled = m_.sampled_.view(DType::f32, {num_rows, config_.hidden_size});
    for (std::int64_t s = 0; s < num_rows; ++s) {
      const std::int64_t row = rows[static_cast<std::size_t>(s)];
      rms_norm(x_.slice_rows(row, row + 1), m_.weights_.final_norm, eps_, sampled.slice_rows(s, s + 1));
    }
    matmul(sampled, m_.weights_.lm_head, TensorView(), logits_, workspace_, m_.pool_);
  }

 private:
  const LayerWeights& weights(int layer) const { return m_.weights_.layers[static_cast<std::size_t>(layer)]; }

  LlamaModel& m_;
  const ModelConfig& config_;
  const ForwardBatch& batch_;
  KVCache& cache_;
  const TensorView& logits_;
  std::int64_t t_;
  TensorView x_;          // [t, hidden] the residual stream
  TensorView normed_;     // [t, hidden]
  TensorView delta_;      // [t, hidden] a sublayer's output before it joins the residual
  TensorView gate_;       // [t, intermediate]
  TensorView up_;         // [t, intermediate]
  TensorView workspace_;  // matmul workspace
  float eps_;
  DType cache_dtype_;
  bool warming_ = false;  // a warm plan is posted (post_warming)
};

void LlamaModel::forward(const ForwardBatch& batch, KVCache& cache, const TensorView& logits) {
  check_batch(batch, cache, logits);
  // Copy-on-write of partly filled pages, before this step writes any K/V.
  for (const PageCopy& copy : batch.page_copies) {
    for (const KVCache::ByteRange& range : cache.copy_ranges(copy))
      std::memcpy(range.target, range.source, range.bytes);
  }
  if (batch.num_tokens() == 0) return;
  CpuForwardStep step(*this, batch, cache, logits);
  if (step_times_ == nullptr) {
    run_llama_layers(step, config_.num_hidden_layers);
    return;
  }
  TimedSteps<CpuForwardStep> timed(step, *step_times_);
  run_llama_layers(timed, config_.num_hidden_layers);
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
