// The small-M matmul kernel: every 8 weights are loaded once, widened to f32 in registers and used
// for MR rows of x at a time, so the weights stream from memory exactly once per call.
#include "kernels/cpu/matmul_avx2.h"

#include <immintrin.h>

#include "core/half.h"
#include "kernels/cpu/prefetch_range.h"
#include "kernels/cpu/row_groups.h"

namespace pagedserve {
namespace {

template <DType WDtype>
struct WeightTraits;

template <>
struct WeightTraits<DType::bf16> {
  using Element = std::uint16_t;
  static __m256 load8(const Element* p) {
    const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(raw), 16));
  }
  static float load1(const Element* p) { return to_float(bf16{*p}); }
};

template <>
struct WeightTraits<DType::f16> {
  using Element = std::uint16_t;
  static __m256 load8(const Element* p) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  static float load1(const Element* p) { return to_float(f16{*p}); }
};

template <>
struct WeightTraits<DType::f32> {
  using Element = float;
  static __m256 load8(const Element* p) { return _mm256_loadu_ps(p); }
  static float load1(const Element* p) { return *p; }
};

inline float horizontal_sum(__m256 v) {
  const __m128 folded = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 pairs = _mm_add_ps(folded, _mm_movehl_ps(folded, folded));
  return _mm_cvtss_f32(_mm_add_ss(pairs, _mm_movehdup_ps(pairs)));
}

// MR rows of x against NR rows of w starting at w_rows; writes y[0..MR), columns [0..NR).
template <DType WDtype, int MR, int NR>
inline void dot_block(const float* x, std::int64_t ldx, std::int64_t k,
                      const typename WeightTraits<WDtype>::Element* w_rows, float* y, std::int64_t ldy) {
  using Traits = WeightTraits<WDtype>;
  __m256 acc[MR][NR];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) acc[i][j] = _mm256_setzero_ps();
  std::int64_t kk = 0;
  for (; kk + 8 <= k; kk += 8) {
    __m256 wv[NR];
    for (int j = 0; j < NR; ++j) wv[j] = Traits::load8(w_rows + j * k + kk);
    for (int i = 0; i < MR; ++i) {
      const __m256 xv = _mm256_loadu_ps(x + i * ldx + kk);
      for (int j = 0; j < NR; ++j) acc[i][j] = _mm256_fmadd_ps(xv, wv[j], acc[i][j]);
    }
  }
  float sums[MR][NR];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) sums[i][j] = horizontal_sum(acc[i][j]);
  for (; kk < k; ++kk) {
    for (int i = 0; i < MR; ++i)
      for (int j = 0; j < NR; ++j) sums[i][j] += x[i * ldx + kk] * Traits::load1(w_rows + j * k + kk);
  }
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) y[i * ldy + j] = sums[i][j];
}

// 2-4 rows of x (still memory-bound): one weight row at a time, front to back, each 8 weights
// widened once for every row of x; two accumulators per row so 2 x MR FMA chains are in flight.
template <DType WDtype, int MR>
inline void dot_row_streaming(const float* x, std::int64_t ldx, std::int64_t k,
                              const typename WeightTraits<WDtype>::Element* w_row, float* y,
                              std::int64_t ldy) {
  using Traits = WeightTraits<WDtype>;
  __m256 even[MR], odd[MR];
  for (int i = 0; i < MR; ++i) even[i] = odd[i] = _mm256_setzero_ps();
  std::int64_t kk = 0;
  for (; kk + 16 <= k; kk += 16) {
    const __m256 w_even = Traits::load8(w_row + kk);
    const __m256 w_odd = Traits::load8(w_row + kk + 8);
    for (int i = 0; i < MR; ++i) {
      even[i] = _mm256_fmadd_ps(_mm256_loadu_ps(x + i * ldx + kk), w_even, even[i]);
      odd[i] = _mm256_fmadd_ps(_mm256_loadu_ps(x + i * ldx + kk + 8), w_odd, odd[i]);
    }
  }
  if (kk + 8 <= k) {
    const __m256 wv = Traits::load8(w_row + kk);
    for (int i = 0; i < MR; ++i) even[i] = _mm256_fmadd_ps(_mm256_loadu_ps(x + i * ldx + kk), wv, even[i]);
    kk += 8;
  }
  for (int i = 0; i < MR; ++i) {
    float sum = horizontal_sum(_mm256_add_ps(even[i], odd[i]));
    for (std::int64_t tail = kk; tail < k; ++tail) sum += x[i * ldx + tail] * Traits::load1(w_row + tail);
    y[i * ldy] = sum;
  }
}

// Up to this many rows of x the weight rows are streamed one at a time (as dot_single_row does for
// one row): interleaved weight rows measured ~1.5x slower at 2-4 rows (bench/RESULTS.md).
constexpr std::int64_t kStreamingMaxRows = 4;

// Batch 1 (memory-bound): one weight row at a time, read front to back with four accumulators in
// flight. Interleaving several weight rows (dot_block's NR) makes short streams that the hardware
// prefetcher follows worse: on an AMD EPYC (Zen 4) at k = 896 one row read at 16.5 GB/s where four
// interleaved rows read at 8.6 (bench/RESULTS.md).
template <DType WDtype>
void dot_single_row(const float* x, std::int64_t k, const typename WeightTraits<WDtype>::Element* w,
                    std::int64_t n_begin, std::int64_t n_end, float* y) {
  using Traits = WeightTraits<WDtype>;
  for (std::int64_t n = n_begin; n < n_end; ++n) {
    const auto* w_row = w + n * k;
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    std::int64_t kk = 0;
    for (; kk + 32 <= k; kk += 32) {
      for (int part = 0; part < 4; ++part) {
        acc[part] = _mm256_fmadd_ps(_mm256_loadu_ps(x + kk + 8 * part), Traits::load8(w_row + kk + 8 * part), acc[part]);
      }
    }
    for (; kk + 8 <= k; kk += 8) acc[0] = _mm256_fmadd_ps(_mm256_loadu_ps(x + kk), Traits::load8(w_row + kk), acc[0]);
    float sum = horizontal_sum(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
    for (; kk < k; ++kk) sum += x[kk] * Traits::load1(w_row + kk);
    y[n] = sum;
  }
}

// Wide blocks for few rows (memory-bound: more independent weight streams), narrower for more.
template <int MR>
constexpr int kColumnsPerBlock = MR <= 2 ? 4 : 3;

template <DType WDtype, int MR>
void dot_rows_fixed_m(const float* x, std::int64_t ldx, std::int64_t k,
                      const typename WeightTraits<WDtype>::Element* w, std::int64_t n_begin,
                      std::int64_t n_end, float* y, std::int64_t ldy) {
  constexpr int NR = kColumnsPerBlock<MR>;
  std::int64_t n = n_begin;
  for (; n + NR <= n_end; n += NR) dot_block<WDtype, MR, NR>(x, ldx, k, w + n * k, y + n, ldy);
  for (; n < n_end; ++n) dot_block<WDtype, MR, 1>(x, ldx, k, w + n * k, y + n, ldy);
}

template <DType WDtype>
void dot_rows_tiled(const float* x, std::int64_t m, std::int64_t ldx, std::int64_t k,
                    const typename WeightTraits<WDtype>::Element* w, std::int64_t n_begin, std::int64_t n_end,
                    float* y, std::int64_t ldy) {
  // Column blocks outermost so a block of weight rows stays in L1 while every x row visits it.
  constexpr std::int64_t kColumnTile = 12;
  for (std::int64_t n0 = n_begin; n0 < n_end; n0 += kColumnTile) {
    const std::int64_t n1 = n0 + kColumnTile < n_end ? n0 + kColumnTile : n_end;
    for_row_groups<4>(m, [&](auto rows, std::int64_t i) {
      dot_rows_fixed_m<WDtype, decltype(rows)::value>(x + i * ldx, ldx, k, w, n0, n1, y + i * ldy, ldy);
    });
  }
}

// With more than a few x rows, widening the same 16-bit weights again for every group of 4 rows
// costs more than the FMAs; so a few weight rows at a time are widened once into an f32 buffer on
// the stack and the f32 kernel runs over all rows of x.
constexpr std::int64_t kWidenRows = 6;
constexpr std::int64_t kWidenMaxK = 16384;

template <DType WDtype>
void dot_rows_typed(const float* x, std::int64_t m, std::int64_t ldx, std::int64_t k,
                    const typename WeightTraits<WDtype>::Element* w, std::int64_t n_begin, std::int64_t n_end,
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
    if (m > 4 && k <= kWidenMaxK) {
      alignas(32) float widened[kWidenRows * kWidenMaxK];
      for (std::int64_t n0 = n_begin; n0 < n_end; n0 += kWidenRows) {
        const std::int64_t rows = n_end - n0 < kWidenRows ? n_end - n0 : kWidenRows;
        convert_to_f32_avx2(w + n0 * k, WDtype, rows * k, widened);
        prefetch_rows_l1(w, k, n0 + kWidenRows, kWidenRows, n_end);  // the next block loads during these FMAs
        dot_rows_tiled<DType::f32>(x, m, ldx, k, widened, 0, rows, y + n0, ldy);
      }
      return;
    }
  }
  dot_rows_tiled<WDtype>(x, m, ldx, k, w, n_begin, n_end, y, ldy);
}

}  // namespace

void dot_rows_avx2(const float* x, std::int64_t m, std::int64_t ldx, std::int64_t k, const void* w,
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

void convert_to_f32_avx2(const void* src, DType src_dtype, std::int64_t count, float* dst) {
  const auto* p = static_cast<const std::uint16_t*>(src);
  std::int64_t i = 0;
  if (src_dtype == DType::bf16) {
    for (; i + 8 <= count; i += 8) _mm256_storeu_ps(dst + i, WeightTraits<DType::bf16>::load8(p + i));
    for (; i < count; ++i) dst[i] = to_float(bf16{p[i]});
  } else {
    for (; i + 8 <= count; i += 8) _mm256_storeu_ps(dst + i, WeightTraits<DType::f16>::load8(p + i));
    for (; i < count; ++i) dst[i] = to_float(f16{p[i]});
  }
}

}  // namespace pagedserve
