// The FMA form of the panel matmul (matmul_panel_avx512.h): weights widened to f32 as they are
// packed, x f32 broadcast. The bf16-pair form is in matmul_avx512bf16.cpp.
#pragma GCC target("avx512f,avx512bw,avx512vl,fma,f16c")
#pragma GCC diagnostic ignored "-Wuninitialized"  // GCC 12's _mm512_undefined_* false positive
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include "kernels/cpu/matmul_panel_avx512.h"

#include <immintrin.h>

#include "kernels/cpu/panel_gemm.h"
#include "kernels/cpu/transpose_avx512.h"
#include "kernels/cpu/wide_load_avx512.h"

namespace pagedserve {
namespace {

template <DType WDtype>
struct FmaForm {
  using XElement = float;
  using WElement = typename Wide<WDtype>::Element;
  using PanelElement = float;
  static constexpr std::int64_t kChunkK = 256;
  static constexpr std::int64_t kPanelElements = kChunkK * 32;  // [k][32] f32: 32 KiB

  static void pack(const WElement* w, std::int64_t k, std::int64_t n0, std::int64_t rows, std::int64_t k0,
                   std::int64_t kc, float* panel) {
    for (int half = 0; half < 2; ++half) {
      for (std::int64_t kk = 0; kk < kc; kk += 16) {
        const std::int64_t count = kc - kk < 16 ? kc - kk : 16;
        const auto mask = static_cast<__mmask16>((1u << count) - 1u);
        __m512i lanes[16];
        for (int j = 0; j < 16; ++j) {
          const std::int64_t row = 16 * half + j;
          lanes[j] = row < rows ? _mm512_castps_si512(Wide<WDtype>::load(w + (n0 + row) * k + k0 + kk, mask))
                                : _mm512_setzero_si512();
        }
        transpose_16x16(lanes);
        for (std::int64_t c = 0; c < count; ++c) {
          _mm512_store_si512(panel + (kk + c) * 32 + 16 * half, lanes[c]);
        }
      }
    }
  }

  template <int MR, bool First>
  static void tile(const float* x, std::int64_t ldx, std::int64_t k0, std::int64_t kc, const float* panel,
                   float* y, std::int64_t ldy, __mmask16 low, __mmask16 high) {
    __m512 acc[MR][2];
#pragma GCC unroll 12
    for (int i = 0; i < MR; ++i) {
      acc[i][0] = First ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(low, y + i * ldy);
      acc[i][1] = First ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(high, y + i * ldy + 16);
    }
    const float* xk = x + k0;
    for (std::int64_t kk = 0; kk < kc; ++kk) {
      const __m512 w_low = _mm512_load_ps(panel + kk * 32);
      const __m512 w_high = _mm512_load_ps(panel + kk * 32 + 16);
#pragma GCC unroll 12
      for (int i = 0; i < MR; ++i) {
        const __m512 xv = _mm512_set1_ps(xk[i * ldx + kk]);
        acc[i][0] = _mm512_fmadd_ps(xv, w_low, acc[i][0]);
        acc[i][1] = _mm512_fmadd_ps(xv, w_high, acc[i][1]);
      }
    }
#pragma GCC unroll 12
    for (int i = 0; i < MR; ++i) {
      _mm512_mask_storeu_ps(y + i * ldy, low, acc[i][0]);
      _mm512_mask_storeu_ps(y + i * ldy + 16, high, acc[i][1]);
    }
  }
};

}  // namespace

void panel_rows_avx512(const float* x, std::int64_t m, std::int64_t ldx, std::int64_t k, const void* w,
                       DType w_dtype, std::int64_t n_begin, std::int64_t n_end, float* y, std::int64_t ldy) {
  switch (w_dtype) {
    case DType::bf16:
      panel_gemm<FmaForm<DType::bf16>>(x, m, ldx, k, static_cast<const std::uint16_t*>(w), n_begin, n_end, y, ldy);
      break;
    case DType::f16:
      panel_gemm<FmaForm<DType::f16>>(x, m, ldx, k, static_cast<const std::uint16_t*>(w), n_begin, n_end, y, ldy);
      break;
    default:
      panel_gemm<FmaForm<DType::f32>>(x, m, ldx, k, static_cast<const float*>(w), n_begin, n_end, y, ldy);
      break;
  }
}

}  // namespace pagedserve
