// Rotary position embedding, "neox" style (the rotated pairs are (i, i + head_dim/2)), as HF
// Llama/Qwen apply it; inv_freq optionally rescaled the llama3 way. Angles are float(position) *
// inv_freq in f32, like HF, so logits match it at long positions too.
// Any single caller thread; never allocates (except rope_inv_freq, a setup call).
#pragma once

#include <optional>
#include <vector>

#include "core/tensor_view.h"

namespace pagedserve {

// Llama 3.x rope_scaling: wavelengths above original / low_freq_factor are divided by `factor`,
// those below original / high_freq_factor kept, the band between interpolated.
struct RopeLlama3Scaling {
  float factor = 8.0f;
  float low_freq_factor = 1.0f;
  float high_freq_factor = 4.0f;
  int original_max_position_embeddings = 8192;
};

// [head_dim / 2] inverse frequencies theta^(-2i/head_dim), optionally rescaled the llama3 way.
std::vector<float> rope_inv_freq(int head_dim, float theta,
                                 const std::optional<RopeLlama3Scaling>& llama3 = std::nullopt);

// cos/sin of position * inv_freq for every token; computed once per forward, shared by all layers.
void rope_cos_sin(const TensorView& positions,  // [num_tokens] i32
                  const TensorView& inv_freq,   // [head_dim / 2] f32
                  const TensorView& cos,        // [num_tokens, head_dim / 2] f32
                  const TensorView& sin);       // [num_tokens, head_dim / 2] f32

// Rotates x in place: for each head, (x[i], x[i + d/2]) by the token's angle i.
void apply_rope(const TensorView& x,     // [num_tokens, num_heads, head_dim] f32, contiguous
                const TensorView& cos,   // [num_tokens, head_dim / 2] f32
                const TensorView& sin);  // [num_tokens, head_dim / 2] f32

}  // namespace pagedserve
