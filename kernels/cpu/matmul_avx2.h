// AVX2/FMA/F16C pieces of the CPU kernels (compiled with -mavx2 -mfma -mf16c). Call only when
// cpu_has_avx2_fma_f16c() is true. Internal to kernels/cpu.
#pragma once

#include <cstdint>

#include "core/dtype.h"

namespace pagedserve {

// y[i, j] = dot(x[i, :k], w[j, :k]) for i < m, j in [n_begin, n_end); w is bf16 or f16 (`w_dtype`)
// or f32, rows of k elements. y[i, j] is y + i * ldy + j.
void dot_rows_avx2(const float* x,  // [m, ldx]
                   std::int64_t m, std::int64_t ldx, std::int64_t k,
                   const void* w,  // [n, k]
                   DType w_dtype, std::int64_t n_begin, std::int64_t n_end,
                   float* y,  // [m, ldy]
                   std::int64_t ldy);

// dst[i] = float(src[i]) for bf16 or f16 src.
void convert_to_f32_avx2(const void* src,  // [count]
                         DType src_dtype, std::int64_t count,
                         float* dst);  // [count]

}  // namespace pagedserve
