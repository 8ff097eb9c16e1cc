// SwiGLU's elementwise half: out = silu(gate) * up, silu(g) = g / (1 + exp(-g)). f32.
// Any single caller thread; never allocates. silu_mul runs the AVX2/FMA form (activation_avx2.h:
// a polynomial exp, 8 lanes) where the CPU has it and PAGEDSERVE_CPU_KERNEL is not "portable",
// else silu_mul_portable (libm exp per element, ~10x slower: 1-2% of a batch-1 decode step).
#pragma once

#include "core/tensor_view.h"

namespace pagedserve {

// `out` may alias `gate`.
void silu_mul(const TensorView& gate,  // [rows, dim] f32
              const TensorView& up,    // [rows, dim] f32
              const TensorView& out);  // [rows, dim] f32

// The scalar form, on every CPU (tests run both forms).
void silu_mul_portable(const TensorView& gate,  // [rows, dim] f32
                       const TensorView& up,    // [rows, dim] f32
                       const TensorView& out);  // [rows, dim] f32

}  // namespace pagedserve
