// A plain single-sequence Llama forward for tests: no paging, no batching, one token at a time,
// contiguous K/V per layer, f64 arithmetic, written straight from the HF modeling code. The paged
// batched LlamaModel must agree with it.
#pragma once

#include <cmath>
#include <cstdint>
#include <numbers>
#include <vector>

#include "core/half.h"
#include "model/model_config.h"
#include "model/model_weights.h"

namespace pagedserve::testing {

class ReferenceForward {
 public:
  ReferenceForward(const ModelConfig& config, const ModelWeights& weights)
      : config_(config),
        weights_(weights),
        keys_(static_cast<std::size_t>(config.num_hidden_layers)),
        values_(keys_.size()) {
    const int half = config.head_dim / 2;
    for (int i = 0; i < half; ++i) {
      double f = std::pow(config.rope_theta, -2.0 * i / config.head_dim);
      if (config.rope_scaling.type == RopeScaling::Type::llama3) {
        const RopeScaling& s = config.rope_scaling;
        const double wavelen = 2 * std::numbers::pi / f;
        const double low = s.original_max_position_embeddings / s.low_freq_factor;
        const double high = s.original_max_position_embeddings / s.high_freq_factor;
        if (wavelen > low) {
          f /= s.factor;
        } else if (wavelen >= high) {
          const double smooth = (s.original_max_position_embeddings / wavelen - s.low_freq_factor) /
                                (s.high_freq_factor - s.low_freq_factor);
          f = (1 - smooth) * f / s.factor + smooth * f;
        }
      }
      inv_freq_.push_back(f);
    }
  }

  // Feeds the next token of the sequence; returns its logits [vocab].
  std::vector<float> step(std::int32_t token) {
    const int hidden = config_.hidden_size;
    const int d = config_.head_dim;
    const int num_heads = config_.num_attention_heads;
    const int kv_heads = config_.num_key_value_heads;
    const int position = static_cast<int>(keys_[0].size());
    std::vector<double> x = row(weights_.embed_tokens, token);
    for (int l = 0; l < config_.num_hidden_layers; ++l) {
      const LayerWeights& w = weights_.layers[static_cast<std::size_t>(l)];
      const std::vector<double> h = rms_norm(x, w.input_norm);
      std::vector<double> q = project(w.q_proj, w.q_bias, h);
      std::vector<double> k = project(w.k_proj, w.k_bias, h);
      const std::vector<double> v = project(w.v_proj, w.v_bias, h);
      for (int head = 0; head < num_heads; ++head) prepare_head(q, head, w.q_norm, position);
      for (int head = 0; head < kv_heads; ++head) prepare_head(k, head, w.k_norm, position);
      keys_[l].push_back(k);
      values_[l].push_back(v);
      std::vector<double> attention(static_cast<std::size_t>(num_heads * d), 0.0);
      for (int head = 0; head < num_heads; ++head) {
        const int kv = head / (num_heads / kv_heads);
        std::vector<double> scores;
        double max_score = -1e300;
        for (int j = 0; j <= position; ++j) {
          double s = 0;
          for (int i = 0; i < d; ++i) s += q[head * d + i] * keys_[l][j][kv * d + i];
          s /= std::sqrt(static_cast<double>(d));
          scores.push_back(s);
          max_score = std::max(max_score, s);
        }
        double total = 0;
        for (double& s : scores) total += (s = std::exp(s - max_score));
        for (int j = 0; j <= position; ++j) {
          for (int i = 0; i < d; ++i)
            attention[head * d + i] += scores[j] / total * values_[l][j][kv * d + i];
        }
      }
      const std::vector<double> o = project(w.o_proj, TensorView(), attention);
      for (int i = 0; i < hidden; ++i) x[i] += o[i];
      const std::vector<double> h2 = rms_norm(x, w.post_attention_norm);
      const std::vector<double> gate = project(w.gate_proj, TensorView(), h2);
      std::vector<double> up = project(w.up_proj, TensorView(), h2);
      for (std::size_t i = 0; i < up.size(); ++i) up[i] *= gate[i] / (1 + std::exp(-gate[i]));
      const std::vector<double> down = project(w.down_proj, TensorView(), up);
      for (int i = 0; i < hidden; ++i) x[i] += down[i];
    }
    const std::vector<double> logits =
        project(weights_.lm_head, TensorView(), rms_norm(x, weights_.final_norm));
    return std::vector<float>(logits.begin(), logits.end());
  }

 private:
  static double at(const TensorView& t, std::int64_t i) {
    switch (t.dtype()) {
      case DType::bf16:
        return to_float(t.data_as<const bf16>()[i]);
      case DType::f16:
        return to_float(t.data_as<const f16>()[i]);
      default:
        return t.data_as<const float>()[i];
    }
  }
  static std::vector<double> row(const TensorView& t, std::int64_t r) {
    std::vector<double> out(static_cast<std::size_t>(t.size(1)));
    for (std::int64_t i = 0; i < t.size(1); ++i) out[i] = at(t, r * t.size(1) + i);
    return out;
  }
  static std::vector<double> project(const TensorView& w, const TensorView& bias,
                                     const std::vector<double>& in) {
    std::vector<double> out(static_cast<std::size_t>(w.size(0)));
    for (std::int64_t n = 0; n < w.size(0); ++n) {
      double s = bias.data() ? at(bias, n) : 0.0;
      for (std::int64_t k = 0; k < w.size(1); ++k) s += at(w, n * w.size(1) + k) * in[k];
      out[n] = s;
    }
    return out;
  }
  std::vector<double> rms_norm(const std::vector<double>& in, const TensorView& weight) const {
    double sum = 0;
    for (double v : in) sum += v * v;
    const double scale = 1 / std::sqrt(sum / static_cast<double>(in.size()) + config_.rms_norm_eps);
    std::vector<double> out(in.size());
    for (std::size_t i = 0; i < in.size(); ++i)
      out[i] = in[i] * scale * at(weight, static_cast<std::int64_t>(i));
    return out;
  }
  // Per-head RMSNorm (Qwen3) then neox RoPE, in place on head `head` of `x`.
  void prepare_head(std::vector<double>& x, int head, const TensorView& norm, int position) const {
    const int d = config_.head_dim;
    double* v = x.data() + head * d;
    if (norm.data()) {
      std::vector<double> part(v, v + d);
      part = rms_norm(part, norm);
      std::copy(part.begin(), part.end(), v);
    }
    for (int i = 0; i < d / 2; ++i) {
      const double angle = static_cast<float>(position) * static_cast<float>(inv_freq_[i]);
      const double a = v[i];
      const double b = v[i + d / 2];
      v[i] = a * std::cos(angle) - b * std::sin(angle);
      v[i + d / 2] = b * std::cos(angle) + a * std::sin(angle);
    }
  }

  const ModelConfig& config_;
  const ModelWeights& weights_;
  std::vector<double> inv_freq_;
  std::vector<std::vector<std::vector<double>>> keys_;    // [layer][position][kv_size]
  std::vector<std::vector<std::vector<double>>> values_;  // [layer][position][kv_size]
};

}  // namespace pagedserve::testing
