// RMSNorm as Llama/Qwen define it, in f32: out = x / sqrt(mean(x^2) + eps) * weight.
// Also used per head for Qwen3's q/k norm (rows = tokens * heads, dim = head_dim).
// Any single caller thread; never allocates.
#pragma once

#include "core/tensor_view.h"

namespace pagedserve {

// `out` may alias `x`. x and out rows may be strided (stride(0) >= dim).
void rms_norm(const TensorView& x,       // [rows, dim] f32
              const TensorView& weight,  // [dim] f32
              float eps,
              const TensorView& out);  // [rows, dim] f32

}  // namespace pagedserve
