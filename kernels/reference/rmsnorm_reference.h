// Naive reference for kernels/cpu/rmsnorm.h, f64 arithmetic.
// Tests only; any thread.
#pragma once

#include <cstdint>
#include <span>

#include "core/tensor_view.h"

namespace pagedserve {

void rms_norm_reference(const TensorView& x,       // [rows, dim] f32
                        const TensorView& weight,  // [dim] f32
                        float eps,
                        const TensorView& out);  // [rows, dim] f32

}  // namespace pagedserve
