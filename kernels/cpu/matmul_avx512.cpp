// The small-M matmul kernel with 16-lane registers: as matmul_avx2.cpp, every 16 weights are
// loaded once, widened to f32 in registers and used for MR rows of x; 32 registers allow 4 x 4
// accumulators. K tails use masked loads, so any K runs without a scalar loop.
#pragma GCC target("avx512f,avx512bw,avx512vl,fma,f16c")
// GCC 12's AVX-512 intrinsics start from _mm512_undefined_*(), which its own flow analysis then
// reports as uninitialised (a known false positive).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include "kernels/cpu/matmul_avx512.h"

#include <immintrin.h>

#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/prefetch_range.h"
#include "kernels/cpu/row_groups.h"
#include "kernels/cpu/wide_load_avx512.h"

namespace pagedserve {
namespace {

template <DType WDtype, int MR, int NR>
inline void dot_block(const float* x, std::int64_t ldx, std::int64_t k,
                      const typename Wide<WDtype>::Element* w_rows, float* y, std::int64_t ldy) {
  __m512 acc[MR][NR];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) acc[i][j] = _mm512_setzero_ps();
  for (std::int64_t kk = 0; kk < k; kk += 16) {
    const __mmask16 mask =
        k - kk >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << (k - kk)) - 1u);
    __m512 wv[NR];
    for (int j = 0; j < NR; ++j) wv[j] = Wide<WDtype>::load(w_rows + j * k + kk, mask);
    for (int i = 0; i < MR; ++i) {
      const __m512 xv = _mm512_maskz_loadu_ps(mask, x + i * ldx + kk);
      for (int j = 0; j < NR; ++j) acc[i][j] = _mm512_fmadd_ps(xv, wv[j], acc[i][j]);
    }
  }
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) y[i * ldy + j] = _mm512_reduce_add_ps(acc[i][j]);
}

template <DType WDtype, int MR>
void dot_rows_fixed_m(const float* x, std::int64_t ldx, std::int64_t k,
                      const typename Wide<WDtype>::Element* w, std::int64_t n_begin, std::int64_t n_end,
                      float* y, std::int64_t ldy) {
  constexpr int NR = 4;
  std::int64_t n = n_begin;
  for (; n + NR <= n_end; n += NR) dot_block<WDtype, MR, NR>(x, ldx, k, w + n * k, y + n, ldy);
  for (; n < n_end; ++n) dot_block<WDtype, MR, 1>(x, ldx, k, w + n * k, y + n, ldy);
}

// Up to this many rows of x the weight rows are streamed one at a time (as dot_single_row does for
// one row): interleaved weight rows measured ~1.5x slower at 2-4 rows (bench/RESULTS.md).
constexpr std::int64_t kStreamingMaxRows = 4;

// 2-4 rows of x (still memory-bound): one weight row at a time, front to back, each 16 weights
// widened once for every row of x; two accumulators per row so 2 x MR FMA chains are in flight,
// and unmasked loads but for the k tail.
template <DType WDtype, int MR>
inline void dot_row_streaming(const float* x, std::int64_t ldx, std::int64_t k,
                              const typename Wide<WDtype>::Element* w_row, float* y, std::int64_t ldy) {
  constexpr auto kAll = static_cast<__mmask16>(0xffff);
  __m512 even[MR], odd[MR];
  for (int i = 0; i < MR; ++i) even[i] = odd[i] = _mm512_setzero_ps();
  std::int64_t kk = 0;
  for (; kk + 32 <= k; kk += 32) {
    const __m512 w_even = Wide<WDtype>::load(w_row + kk, kAll);
    const __m512 w_odd = Wide<WDtype>::load(w_row + kk + 16, kAll);
    for (int i = 0; i < MR; ++i) {
      even[i] = _mm512_fmadd_ps(_mm512_loadu_ps(x + i * ldx + kk), w_even, even[i]);
      odd[i] = _mm512_fmadd_ps(_mm512_loadu_ps(x + i * ldx + kk + 16), w_odd, odd[i]);
    }
  }
  for (; kk < k; kk += 16) {
    const auto mask = k - kk >= 16 ? kAll : static_cast<__mmask16>((1u << (k - kk)) - 1u);
    const __m512 wv = Wide<WDtype>::load(w_row + kk, mask);
    for (int i = 0; i < MR; ++i)
      even[i] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mask, x + i * ldx + kk), wv, even[i]);
  }
  for (int i = 0; i < MR; ++i) y[i * ldy] = _mm512_reduce_add_ps(_mm512_add_ps(even[i], odd[i]));
}

// Batch 1 (memory-bound): one weight row at a time, read front to back with four accumulators in
// flight, as in matmul_avx2.cpp (interleaved weight rows stream worse).
template <DType WDtype>
void dot_single_row(const float* x, std::int64_t k, const typename Wide<WDtype>::Element* w,
                    std::int64_t n_begin, std::int64_t n_end, float* y) {
  constexpr auto kAll = static_cast<__mmask16>(0xffff);
  for (std::int64_t n = n_begin; n < n_end; ++n) {
    const auto* w_row = w + n * k;
    __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
    std::int64_t kk = 0;
    for (; kk + 64 <= k; kk += 64) {
      for (int part = 0; part < 4; ++part) {
        acc[part] = _mm512_fmadd_ps(_mm512_loadu_ps(x + kk + 16 * part),
                                    Wide<WDtype>::load(w_row + kk + 16 * part, kAll), acc[part]);
      }
    }
    for (; kk < k; kk += 16) {
      const auto mask = k - kk >= 16 ? kAll : static_cast<__mmask16>((1u << (k - kk)) - 1u);
      acc[0] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mask, x + kk), Wide<WDtype>::load(w_row + kk, mask), acc[0]);
    }
    y[n] = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3])));
  }
}

// With more than a few x rows the weights are widened to f32 once, NR rows at a time, into a stack
// buffer (as in matmul_avx2.cpp), and an MR x NR tile of 16-lane accumulators runs over them:
// 6 x 4 = 24 accumulators + 4 weight vectors + 1 x vector fit the 32 registers, so each load
// feeds 2.4 FMAs instead of the 1.3 of the 4 x 3 AVX2 tile.
constexpr int kWideNR = 4;
constexpr std::int64_t kWidenMinRows = 4;
constexpr std::int64_t kWidenMaxK = 16384;

// One K chunk [k0, k1) of an MR x NR tile of f32 rows, accumulators kept in acc between chunks
// so the chunk of the x rows and weight rows stays in L1 across the whole tile loop.
template <int MR, int NR>
inline void tile_chunk(const float* x, std::int64_t ldx, std::int64_t k, std::int64_t k0, std::int64_t k1,
                       const float* w_rows, __m512* acc) {
  __m512 a[MR][NR];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) a[i][j] = acc[i * kWideNR + j];
  for (std::int64_t kk = k0; kk < k1; kk += 16) {
    const __mmask16 mask =
        k1 - kk >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << (k1 - kk)) - 1u);
    __m512 wv[NR];
    for (int j = 0; j < NR; ++j) wv[j] = _mm512_maskz_loadu_ps(mask, w_rows + j * k + kk);
    for (int i = 0; i < MR; ++i) {
      const __m512 xv = _mm512_maskz_loadu_ps(mask, x + i * ldx + kk);
      for (int j = 0; j < NR; ++j) a[i][j] = _mm512_fmadd_ps(xv, wv[j], a[i][j]);
    }
  }
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) acc[i * kWideNR + j] = a[i][j];
}

template <int MR>
void tile_chunk_rows(const float* x, std::int64_t ldx, std::int64_t k, std::int64_t k0, std::int64_t k1,
                     const float* w_rows, int rows, __m512* acc) {
  if (rows == kWideNR) {
    tile_chunk<MR, kWideNR>(x, ldx, k, k0, k1, w_rows, acc);
    return;
  }
  for (int j = 0; j < rows; ++j) tile_chunk<MR, 1>(x, ldx, k, k0, k1, w_rows + j * k, acc + j);
}

// Floats of K per chunk: 4 weight rows and up to kChunkMaxM x rows of it fit L1 (48 KiB).
constexpr std::int64_t kChunkK = 256;
constexpr std::int64_t kChunkMaxM = 32;

void dot_widened_chunked(const float* x, std::int64_t m, std::int64_t ldx, std::int64_t k,
                         const float* w_rows, int rows, float* y, std::int64_t ldy) {
  __m512 acc[kChunkMaxM * kWideNR];
  for (auto& a : acc) a = _mm512_setzero_ps();
  for (std::int64_t k0 = 0; k0 < k; k0 += kChunkK) {
    const std::int64_t k1 = k0 + kChunkK < k ? k0 + kChunkK : k;
    for_row_groups<6>(m, [&](auto group, std::int64_t i) {
      tile_chunk_rows<decltype(group)::value>(x + i * ldx, ldx, k, k0, k1, w_rows, rows, acc + i * kWideNR);
    });
  }
  for (std::int64_t i = 0; i < m; ++i)
    for (int j = 0; j < rows; ++j) y[i * ldy + j] = _mm512_reduce_add_ps(acc[i * kWideNR + j]);
}

template <int MR>
void dot_widened_fixed_m(const float* x, std::int64_t ldx, std::int64_t k, const float* w_rows, int rows,
                         float* y, std::int64_t ldy) {
  if (rows == kWideNR) {
    dot_block<DType::f32, MR, kWideNR>(x, ldx, k, w_rows, y, ldy);
    return;
  }
  for (int j = 0; j < rows; ++j) dot_block<DType::f32, MR, 1>(x, ldx, k, w_rows + j * k, y + j, ldy);
}

void dot_widened(const float* x, std::int64_t m, std::int64_t ldx, std::int64_t k, const float* w_rows,
                 int rows, float* y, std::int64_t ldy) {
  for_row_groups<6>(m, [&](auto group, std::int64_t i) {
    dot_widened_fixed_m<decltype(group)::value>(x + i * ldx, ldx, k, w_rows, rows, y + i * ldy, ldy);
  });
}

template <DType WDtype>
void widen(const typename Wide<WDtype>::Element* src, std::int64_t count, float* dst) {
  std::int64_t i = 0;
  for (; i + 16 <= count; i += 16) _mm512_storeu_ps(dst + i, Wide<WDtype>::load(src + i, 0xffff));
  if (i < count) {
    const auto mask = static_cast<__mmask16>((1u << (count - i)) - 1u);
    _mm512_mask_storeu_ps(dst + i, mask, Wide<WDtype>::load(src + i, mask));
  }
}

template <DType WDtype>
void dot_rows_typed(const float* x, std::int64_t m, std::int64_t ldx, std::int64_t k,
                    const typename Wide<WDtype>::Element* w, std::int64_t n_begin, std::int64_t n_end,
                    float* y, std::int64_t ldy) {
  // (f32 weights keep dot_block's summation order at every M: matmul.h)
  if (m == 1 && WDtype != DType::f32) {
    dot_single_row<WDtype>(x, k, w, n_begin, n_end, y);
    return;
  }
  if (m <= kStreamingMaxRows && WDtype != DType::f32) {
    // Still memory-bound: each weight row read once, front to back, for all rows of x.
    for_weight_rows_streaming<kStreamingMaxRows>(m, n_begin, n_end,
                                                 [&](auto rows, std::int64_t i, std::int64_t n) {
                                                   dot_row_streaming<WDtype, decltype(rows)::value>(
                                                       x + i * ldx, ldx, k, w + n * k, y + i * ldy + n, ldy);
                                                 });
    return;
  }
  if constexpr (WDtype != DType::f32) {
    if (m > kWidenMinRows && k <= kWidenMaxK) {
      alignas(64) float widened[kWideNR * kWidenMaxK];
      for (std::int64_t n0 = n_begin; n0 < n_end; n0 += kWideNR) {
        const int rows = static_cast<int>(n_end - n0 < kWideNR ? n_end - n0 : kWideNR);
        widen<WDtype>(w + n0 * k, rows * k, widened);
        prefetch_rows_l1(w, k, n0 + kWideNR, kWideNR, n_end);  // the next block loads during these FMAs
        if (m <= kChunkMaxM) {
          dot_widened_chunked(x, m, ldx, k, widened, rows, y + n0, ldy);
        } else {
          dot_widened(x, m, ldx, k, widened, rows, y + n0, ldy);
        }
      }
      return;
    }
  }
  // Column tiles outermost so a few weight rows stay in L1 while every x row visits them.
  constexpr std::int64_t kColumnTile = 8;
  for (std::int64_t n0 = n_begin; n0 < n_end; n0 += kColumnTile) {
    const std::int64_t n1 = n0 + kColumnTile < n_end ? n0 + kColumnTile : n_end;
    for_row_groups<4>(m, [&](auto rows, std::int64_t i) {
      dot_rows_fixed_m<WDtype, decltype(rows)::value>(x + i * ldx, ldx, k, w, n0, n1, y + i * ldy, ldy);
    });
  }
}

}  // namespace

bool cpu_has_avx512() noexcept {
  static const bool has = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                          __builtin_cpu_supports("avx512vl") && cpu_has_f16c();
  return has;
}

void dot_rows_avx512(const float* x, std::int64_t m, std::int64_t ldx, std::int64_t k, const void* w,
                     DType w_dtype, std::int64_t n_begin, std::int64_t n_end, float* y, std::int64_t ldy) {
  switch (w_dtype) {
    case DType::bf16:
      dot_rows_typed<DType::bf16>(x, m, ldx, k, static_cast<const std::uint16_t*>(w), n_begin, n_end, y, ldy);
      break;
    case DType::f16:
      dot_rows_typed<DType::f16>(x, m, ldx, k, static_cast<const std::uint16_t*>(w), n_begin, n_end, y, ldy);
      break;
    default:
      dot_rows_typed<DType::f32>(x, m, ldx, k, static_cast<const float*>(w), n_begin, n_end, y, ldy);
      break;
  }
}

}  // namespace pagedserve
