#include "kernels/cpu/rope.h"

#include <cassert>
#include <cmath>
#include <numbers>

namespace pagedserve {

std::vector<float> rope_inv_freq(int head_dim, float theta, const std::optional<RopeLlama3Scaling>& llama3) {
  std::vector<float> inv_freq(static_cast<std::size_t>(head_dim / 2));
  for (int i = 0; i < head_dim / 2; ++i) {
    // HF: 1 / base ** (arange(0, dim, 2).float() / dim), in f32.
    const float exponent = static_cast<float>(2 * i) / static_cast<float>(head_dim);
    inv_freq[i] = 1.0f / std::pow(theta, exponent);
  }
  if (llama3) {
    const RopeLlama3Scaling& scaling = *llama3;
    // Long wavelengths are slowed by `factor`, short ones kept, and the band between blended.
    const float old_context = static_cast<float>(scaling.original_max_position_embeddings);
    const float low_freq_wavelen = old_context / scaling.low_freq_factor;
    const float high_freq_wavelen = old_context / scaling.high_freq_factor;
    for (float& f : inv_freq) {
      const float wavelen = 2.0f * std::numbers::pi_v<float> / f;
      if (wavelen > low_freq_wavelen) {
        f = f / scaling.factor;
      } else if (wavelen >= high_freq_wavelen) {
        const float smooth = (old_context / wavelen - scaling.low_freq_factor) /
                             (scaling.high_freq_factor - scaling.low_freq_factor);
        f = (1.0f - smooth) * f / scaling.factor + smooth * f;
      }
    }
  }
  return inv_freq;
}

void rope_cos_sin(const TensorView& positions, const TensorView& inv_freq, const TensorView& cos,
                  const TensorView& sin) {
  const std::int64_t num_tokens = positions.size(0);
  const std::int64_t half = inv_freq.size(0);
  for (std::int64_t t = 0; t < num_tokens; ++t) {
    const float position = static_cast<float>(positions.data_as<const std::int32_t>()[t]);
    for (std::int64_t i = 0; i < half; ++i) {
      const float angle = position * inv_freq.data_as<const float>()[i];
      cos.data_as<float>()[t * half + i] = std::cos(angle);
      sin.data_as<float>()[t * half + i] = std::sin(angle);
    }
  }
}

void apply_rope(const TensorView& x, const TensorView& cos, const TensorView& sin) {
  const std::int64_t num_tokens = x.size(0);
  const std::int64_t num_heads = x.size(1);
  const std::int64_t head_dim = x.size(2);
  const std::int64_t half = head_dim / 2;
  assert(x.is_contiguous() && cos.size(1) == half);
  for (std::int64_t t = 0; t < num_tokens; ++t) {
    const float* c = cos.data_as<const float>() + t * half;
    const float* s = sin.data_as<const float>() + t * half;
    for (std::int64_t h = 0; h < num_heads; ++h) {
      float* v = x.data_as<float>() + (t * num_heads + h) * head_dim;
      for (std::int64_t i = 0; i < half; ++i) {
        const float a = v[i];
        const float b = v[i + half];
        v[i] = a * c[i] - b * s[i];
        v[i + half] = b * c[i] + a * s[i];
      }
    }
  }
}

}  // namespace pagedserve
