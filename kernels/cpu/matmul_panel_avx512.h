// The large-M (prefill) matmul on AVX-512 without AMX: y[0:m, n_begin:n_end] = x * w^T as a
// register-blocked GEMM in the usual outer-product form.
//   - Weights are packed a panel at a time: 32 rows x up to kPanelK of k, transposed so that one
//     vector holds 16 consecutive weight rows at one k: [k][32] f32 (f16/f32/bf16 weights widened,
//     for FMA), or [k/2][32] bf16 pairs (bf16 weights, for vdpbf16ps).
//   - x elements are broadcast straight from x's rows (f32, or bf16 pairs), so x is never packed.
//   - A 12 x 32 tile of y (24 accumulators) runs over the panel's k and is stored straight into
//     y's rows; for the next k chunk of the panel it is loaded back.
// Every weight element is widened/packed once per call (amortised over m rows) and every
// multiply-add runs at the full vector width: the FMA form reaches the f32 peak, the pair form
// twice that. The small-M kernels (dot products, matmul_avx512.h, matmul_avx512bf16.h) stay
// better for decode, where each weight is used by few rows.
// Compiled with a target pragma; call only when cpu_has_avx512() (and for the pair form
// cpu_has_avx512_bf16()) is true. Internal to kernels/cpu.
#pragma once

#include <cstdint>

#include "core/dtype.h"

namespace pagedserve {

// Weight rows per packed panel; a block of rows handed to one call should be a multiple of it
// (any count works; a partial panel is padded with zero rows and stored with masks).
inline constexpr std::int64_t kPanelRows = 32;

// y[i, n] = sum_k x[i, k] * w[n, k] for i < m, n in [n_begin, n_end), f32 accumulation.
void panel_rows_avx512(const float* x,  // [m, ldx] f32
                       std::int64_t m, std::int64_t ldx, std::int64_t k,
                       const void* w,  // [n, k] bf16 | f16 | f32 (`w_dtype`)
                       DType w_dtype, std::int64_t n_begin, std::int64_t n_end,
                       float* y,  // [m, ldy] f32
                       std::int64_t ldy);

// The same with x and w in bf16 and vdpbf16ps; k must be even (pairs).
void panel_rows_avx512bf16(const std::uint16_t* x,  // [m, k] bf16 bits, rows at stride k
                           std::int64_t m, std::int64_t k,
                           const std::uint16_t* w,  // [n, k] bf16 bits
                           std::int64_t n_begin, std::int64_t n_end,
                           float* y,  // [m, ldy] f32
                           std::int64_t ldy);

}  // namespace pagedserve
