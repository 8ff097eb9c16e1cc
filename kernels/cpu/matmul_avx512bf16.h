// The bf16-weight matmul on AVX512_BF16 (`vdpbf16ps`: 32 bf16 products summed in pairs into 16 f32
// lanes per instruction, twice the multiply rate of an f32 FMA), for CPUs that have it (AMD Zen 4
// and later, Intel Cooper Lake and Sapphire Rapids). x comes in already rounded to bf16 (the
// matmul contract for bf16 weights, matmul.h), so every product is exact and only the f32
// summation order differs from the other paths.
//
// Dot-product form, the weights read in their checkpoint layout ([n, k] rows, no repacking):
//   - one x row (batch-1 decode, memory-bound): each weight row is read front to back by itself,
//     the access pattern the hardware prefetcher streams at full bandwidth;
//   - more rows: an MR x NR register tile of x rows x weight rows over the whole k, each weight
//     vector loaded once for MR rows of x and each x vector once for NR weight rows.
// Compiled with a target pragma; call only when cpu_has_avx512_bf16() is true. Internal to
// kernels/cpu.
#pragma once

#include <cstdint>

namespace pagedserve {

// AVX512F/BW/VL and AVX512_BF16.
bool cpu_has_avx512_bf16() noexcept;

// dst[:k] = x[:k] rounded to bf16 (nearest even; NaN stays NaN).
void round_row_to_bf16_avx512bf16(const float* x,  // [k] f32
                                  std::int64_t k,
                                  std::uint16_t* dst);  // [k] bf16 bits

// y[i, j] = dot(x[i, :k], w[j, :k]) for i < m, j in [n_begin, n_end), f32 accumulation.
void dot_rows_avx512bf16(const std::uint16_t* x,  // [m, k] bf16 bits, rows at stride k
                         std::int64_t m, std::int64_t k,
                         const std::uint16_t* w,  // [n, k] bf16 bits
                         std::int64_t n_begin, std::int64_t n_end,
                         float* y,  // [m, ldy] f32
                         std::int64_t ldy);

}  // namespace pagedserve
