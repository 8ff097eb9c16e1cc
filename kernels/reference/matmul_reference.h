// Naive y = x * w^T (+ bias) with f64 accumulation, x rounded to bf16 first when w is bf16: the
// reference for kernels/cpu/matmul.h.
// Tests only; any thread.
#pragma once

#include "core/tensor_view.h"

namespace pagedserve {

void matmul_reference(const TensorView& x,     // [m, k] f32
                      const TensorView& w,     // [n, k] bf16 | f16 | f32
                      const TensorView& bias,  // [n] f32, or empty
                      const TensorView& y);    // [m, n] f32

}  // namespace pagedserve
