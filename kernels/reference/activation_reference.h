// Naive reference for kernels/cpu/activation.h, f64. Tests only.
#pragma once

#include "core/tensor_view.h"

namespace pagedserve {

void silu_mul_reference(const TensorView& gate,  // [rows, dim] f32
                        const TensorView& up,    // [rows, dim] f32
                        const TensorView& out);  // [rows, dim] f32

}  // namespace pagedserve
