// AVX-512 (F + BW) version of the small-M matmul kernel, for CPUs that have it (Sapphire Rapids
// and most servers): twice the FMA width of AVX2, which the compute-bound batch-16 decode needs.
// Compiled with a target pragma (the file is not *_avx2.cpp); call only when
// cpu_has_avx512() is true. Internal to kernels/cpu.
#pragma once

#include <cstdint>

#include "core/dtype.h"

namespace pagedserve {

bool cpu_has_avx512() noexcept;

// Same contract as dot_rows_avx2 (kernels/cpu/matmul_avx2.h).
void dot_rows_avx512(const float* x,  // [m, ldx]
                     std::int64_t m, std::int64_t ldx, std::int64_t k,
                     const void* w,  // [n, k]
                     DType w_dtype, std::int64_t n_begin, std::int64_t n_end,
                     float* y,  // [m, ldy]
                     std::int64_t ldy);

}  // namespace pagedserve
