// SwiGLU's elementwise half: out = silu(gate) * up, silu(g) = g / (1 + exp(-g)). f32.
// Any single caller thread; never allocates.
#pragma once

#include "core/tensor_view.h"

namespace pagedserve {

// `out` may alias `gate`.
void silu_mul(const TensorView& gate,  // [rows, dim] f32
              const TensorView& up,    // [rows, dim] f32
              const TensorView& out);  // [rows, dim] f32

}  // namespace pagedserve
