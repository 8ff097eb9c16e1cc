// Naive reference for kernels/cpu/rope.h: angles straight from the positions (float(position) *
// inv_freq, as HF computes them), trigonometry in f64, one element pair at a time. Tests only.
#pragma once

#include "core/tensor_view.h"

namespace pagedserve {

void apply_rope_reference(const TensorView& x,          // [num_tokens, num_heads, head_dim] f32
                          const TensorView& positions,  // [num_tokens] i32
                          const TensorView& inv_freq);  // [head_dim / 2] f32

}  // namespace pagedserve
