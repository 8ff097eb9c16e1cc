// AVX512_BF16 matmul kernels: see matmul_avx512bf16.h for the forms and why.
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512bf16")
// GCC 12's AVX-512 intrinsics start from _mm512_undefined_*(), which its own flow analysis then
// reports as uninitialised (a known false positive).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include "kernels/cpu/matmul_avx512bf16.h"

#include <immintrin.h>

#include <cstring>

#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/matmul_panel_avx512.h"
#include "kernels/cpu/panel_gemm.h"
#include "kernels/cpu/prefetch_range.h"
#include "kernels/cpu/row_groups.h"
#include "kernels/cpu/transpose_avx512.h"

namespace pagedserve {
namespace {

// The first `count` (< 32) bf16 lanes of a 32-lane load; the rest read as zero, so a k tail adds
// nothing to the sums (both operands of the missing products are zero).
inline __mmask32 tail_mask(std::int64_t count) {
  return static_cast<__mmask32>((std::uint64_t{1} << count) - 1u);
}

inline __m512bh load_pairs(const std::uint16_t* p) { return (__m512bh)_mm512_loadu_si512(p); }
inline __m512bh load_pairs(const std::uint16_t* p, __mmask32 mask) {
  return (__m512bh)_mm512_maskz_loadu_epi16(mask, p);
}

// Batch 1: weight row after weight row, each read front to back with two accumulators in flight.
void dot_single_row(const std::uint16_t* x, std::int64_t k, const std::uint16_t* w, std::int64_t n_begin,
                    std::int64_t n_end, float* y) {
  for (std::int64_t n = n_begin; n < n_end; ++n) {
    const std::uint16_t* w_row = w + n * k;
    __m512 even = _mm512_setzero_ps();
    __m512 odd = _mm512_setzero_ps();
    std::int64_t kk = 0;
    for (; kk + 64 <= k; kk += 64) {
      even = _mm512_dpbf16_ps(even, load_pairs(x + kk), load_pairs(w_row + kk));
      odd = _mm512_dpbf16_ps(odd, load_pairs(x + kk + 32), load_pairs(w_row + kk + 32));
    }
    if (kk + 32 <= k) {
      even = _mm512_dpbf16_ps(even, load_pairs(x + kk), load_pairs(w_row + kk));
      kk += 32;
    }
    if (kk < k) {
      const __mmask32 mask = tail_mask(k - kk);
      odd = _mm512_dpbf16_ps(odd, load_pairs(x + kk, mask), load_pairs(w_row + kk, mask));
    }
    y[n] = _mm512_reduce_add_ps(_mm512_add_ps(even, odd));
  }
}

// One 32-wide k step of an MR x NR tile: NR weight vectors, each x vector used NR times. Masked:
// the k tail, `mask` lanes only.
template <int MR, int NR, bool Masked>
inline void tile_step(const std::uint16_t* x, std::int64_t k, const std::uint16_t* w_rows, std::int64_t kk,
                      __mmask32 mask, __m512 (&acc)[MR][NR]) {
  __m512bh wv[NR];
#pragma GCC unroll 8
  for (int j = 0; j < NR; ++j) wv[j] = Masked ? load_pairs(w_rows + j * k + kk, mask) : load_pairs(w_rows + j * k + kk);
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i) {
    const __m512bh xv = Masked ? load_pairs(x + i * k + kk, mask) : load_pairs(x + i * k + kk);
#pragma GCC unroll 8
    for (int j = 0; j < NR; ++j) acc[i][j] = _mm512_dpbf16_ps(acc[i][j], xv, wv[j]);
  }
}

// y[i, j] for MR rows of x and NR weight rows, over the whole k.
template <int MR, int NR>
void dot_tile(const std::uint16_t* x, std::int64_t k, const std::uint16_t* w_rows, float* y, std::int64_t ldy) {
  __m512 acc[MR][NR];
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 8
    for (int j = 0; j < NR; ++j) acc[i][j] = _mm512_setzero_ps();
  std::int64_t kk = 0;
  for (; kk + 32 <= k; kk += 32) tile_step<MR, NR, false>(x, k, w_rows, kk, 0, acc);
  if (kk < k) tile_step<MR, NR, true>(x, k, w_rows, kk, tail_mask(k - kk), acc);
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 8
    for (int j = 0; j < NR; ++j) y[i * ldy + j] = _mm512_reduce_add_ps(acc[i][j]);
}

// 6 x 4: 24 accumulators + 4 weight vectors + 1 x vector of the 32 registers; 10 loads per 24
// vdpbf16ps.
constexpr int kTileRows = 6;
// Up to this many rows of x, weight rows are streamed one at a time instead (interleaved weight
// rows stream worse while the step is memory-bound; bench/RESULTS.md).
constexpr int kStreamingMaxRows = 8;
constexpr int kTileWeightRows = 4;

// The bf16-pair form of the panel matmul (matmul_panel_avx512.h): the panel holds, for each pair
// of k, 32 weight rows' (w[n, k], w[n, k + 1]) as dwords; each x pair is broadcast to all lanes.
struct PairForm {
  using XElement = std::uint16_t;
  using WElement = std::uint16_t;
  using PanelElement = std::uint32_t;
  static constexpr std::int64_t kChunkK = 512;
  static constexpr std::int64_t kPanelElements = kChunkK / 2 * 32;  // [k/2][32] pairs: 32 KiB

  static void pack(const std::uint16_t* w, std::int64_t k, std::int64_t n0, std::int64_t rows, std::int64_t k0,
                   std::int64_t kc, std::uint32_t* panel) {
    for (int half = 0; half < 2; ++half) {
      for (std::int64_t kk = 0; kk < kc; kk += 32) {
        const std::int64_t count = kc - kk < 32 ? kc - kk : 32;
        const __mmask32 mask = count == 32 ? static_cast<__mmask32>(0xffffffffu) : tail_mask(count);
        __m512i lanes[16];
        for (int j = 0; j < 16; ++j) {
          const std::int64_t row = 16 * half + j;
          lanes[j] = row < rows ? _mm512_maskz_loadu_epi16(mask, w + (n0 + row) * k + k0 + kk) : _mm512_setzero_si512();
        }
        transpose_16x16(lanes);
        for (std::int64_t pair = 0; pair < count / 2; ++pair) {
          _mm512_store_si512(panel + (kk / 2 + pair) * 32 + 16 * half, lanes[pair]);
        }
      }
    }
  }

  template <int MR, bool First>
  static void tile(const std::uint16_t* x, std::int64_t ldx, std::int64_t k0, std::int64_t kc,
                   const std::uint32_t* panel, float* y, std::int64_t ldy, __mmask16 low, __mmask16 high) {
    __m512 acc[MR][2];
#pragma GCC unroll 12
    for (int i = 0; i < MR; ++i) {
      acc[i][0] = First ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(low, y + i * ldy);
      acc[i][1] = First ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(high, y + i * ldy + 16);
    }
    const std::uint16_t* xk = x + k0;
    for (std::int64_t pair = 0; pair < kc / 2; ++pair) {
      const auto w_low = (__m512bh)_mm512_load_si512(panel + pair * 32);
      const auto w_high = (__m512bh)_mm512_load_si512(panel + pair * 32 + 16);
#pragma GCC unroll 12
      for (int i = 0; i < MR; ++i) {
        std::int32_t x_pair;
        std::memcpy(&x_pair, xk + i * ldx + 2 * pair, sizeof x_pair);
        const auto xv = (__m512bh)_mm512_set1_epi32(x_pair);
        acc[i][0] = _mm512_dpbf16_ps(acc[i][0], xv, w_low);
        acc[i][1] = _mm512_dpbf16_ps(acc[i][1], xv, w_high);
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

void panel_rows_avx512bf16(const std::uint16_t* x, std::int64_t m, std::int64_t k, const std::uint16_t* w,
                           std::int64_t n_begin, std::int64_t n_end, float* y, std::int64_t ldy) {
  panel_gemm<PairForm>(x, m, k, k, w, n_begin, n_end, y, ldy);
}

bool cpu_has_avx512_bf16() noexcept {
  static const bool has = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                          __builtin_cpu_supports("avx512vl") && cpu_has_avx512bf16_bit();
  return has;
}

void round_row_to_bf16_avx512bf16(const float* x, std::int64_t k, std::uint16_t* dst) {
  std::int64_t kk = 0;
  for (; kk + 32 <= k; kk += 32) {
    const __m512bh pairs = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(x + kk + 16), _mm512_loadu_ps(x + kk));
    _mm512_storeu_si512(dst + kk, (__m512i)pairs);
  }
  for (; kk < k; kk += 16) {
    const std::int64_t count = k - kk < 16 ? k - kk : 16;
    const auto mask = static_cast<__mmask16>((1u << count) - 1u);
    const __m256bh half = _mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(mask, x + kk));
    _mm256_mask_storeu_epi16(dst + kk, mask, (__m256i)half);
  }
}

void dot_rows_avx512bf16(const std::uint16_t* x, std::int64_t m, std::int64_t k, const std::uint16_t* w,
                         std::int64_t n_begin, std::int64_t n_end, float* y, std::int64_t ldy) {
  if (m == 1) {
    dot_single_row(x, k, w, n_begin, n_end, y);
    return;
  }
  if (m <= kStreamingMaxRows) {
    // Still memory-bound: each weight row read once, front to back, for every row of x.
    for_weight_rows_streaming<kStreamingMaxRows>(m, n_begin, n_end, [&](auto rows, std::int64_t i, std::int64_t n) {
      dot_tile<decltype(rows)::value, 1>(x + i * k, k, w + n * k, y + i * ldy + n, ldy);
    });
    return;
  }
  for (std::int64_t n0 = n_begin; n0 < n_end; n0 += kTileWeightRows) {
    const std::int64_t rows = n_end - n0 < kTileWeightRows ? n_end - n0 : kTileWeightRows;
    // The next block loads while this one's tiles run (its first row group would otherwise wait
    // on four interleaved rows the hardware prefetcher follows poorly).
    prefetch_rows_l1(w, k, n0 + kTileWeightRows, kTileWeightRows, n_end);
    for_row_groups<kTileRows>(m, [&](auto group, std::int64_t i) {
      constexpr int kRows = decltype(group)::value;
      if (rows == kTileWeightRows) {
        dot_tile<kRows, kTileWeightRows>(x + i * k, k, w + n0 * k, y + i * ldy + n0, ldy);
        return;
      }
      for (std::int64_t j = 0; j < rows; ++j) dot_tile<kRows, 1>(x + i * k, k, w + (n0 + j) * k, y + i * ldy + n0 + j, ldy);
    });
  }
}

}  // namespace pagedserve
