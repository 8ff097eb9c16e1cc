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

namespace pagedserve {
namespace {

template <DType WDtype>
struct Wide;

template <>
struct Wide<DType::bf16> {
  using Element = std::uint16_t;
  static __m512 load(const Element* p, __mmask16 mask) {
    const __m256i raw = _mm256_maskz_loadu_epi16(mask, p);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(raw), 16));
  }
};

template <>
struct Wide<DType::f16> {
  using Element = std::uint16_t;
  static __m512 load(const Element* p, __mmask16 mask) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask, p));
  }
};

template <>
struct Wide<DType::f32> {
  using Element = float;
  static __m512 load(const Element* p, __mmask16 mask) { return _mm512_maskz_loadu_ps(mask, p); }
};

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

template <DType WDtype>
void dot_rows_typed(const float* x, std::int64_t m, std::int64_t ldx, std::int64_t k,
                    const typename Wide<WDtype>::Element* w, std::int64_t n_begin, std::int64_t n_end,
                    float* y, std::int64_t ldy) {
  // Column tiles outermost so a few weight rows stay in L1 while every x row visits them.
  constexpr std::int64_t kColumnTile = 8;
  for (std::int64_t n0 = n_begin; n0 < n_end; n0 += kColumnTile) {
    const std::int64_t n1 = n0 + kColumnTile < n_end ? n0 + kColumnTile : n_end;
    std::int64_t i = 0;
    for (; i + 4 <= m; i += 4) dot_rows_fixed_m<WDtype, 4>(x + i * ldx, ldx, k, w, n0, n1, y + i * ldy, ldy);
    const float* xr = x + i * ldx;
    float* yr = y + i * ldy;
    switch (m - i) {
      case 3:
        dot_rows_fixed_m<WDtype, 3>(xr, ldx, k, w, n0, n1, yr, ldy);
        break;
      case 2:
        dot_rows_fixed_m<WDtype, 2>(xr, ldx, k, w, n0, n1, yr, ldy);
        break;
      case 1:
        dot_rows_fixed_m<WDtype, 1>(xr, ldx, k, w, n0, n1, yr, ldy);
        break;
      default:
        break;
    }
  }
}

}  // namespace

bool cpu_has_avx512() noexcept {
  static const bool has = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                          __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("f16c");
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
