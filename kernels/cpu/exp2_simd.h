// 2^x on 8 lanes for the AVX2 (and AVX-512) kernel files: attention's softmax
// (attention_tile_simd.h) and SiLU (activation_avx2.cpp). Internal linkage on purpose, as in
// attention_tile_simd.h: each including file compiles it for its own target, and an inline
// function with external linkage could be merged across targets by the linker.
#pragma once

#include <immintrin.h>

namespace pagedserve {
namespace {  // NOLINT: see above

// 2^x for x in [-126, 126] (callers clamp or mask): 2^round(x) placed in the exponent bits, times
// 2^f for f in [-0.5, 0.5] from the Cephes exp2f minimax polynomial (relative error ~2e-7).
inline __m256 exp2_in_range(__m256 x) {
  const __m256 n = _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m256 f = _mm256_sub_ps(x, n);
  __m256 p = _mm256_set1_ps(1.535336188319500e-4f);
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.339887440266574e-3f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(9.618437357674640e-3f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(5.550332471162809e-2f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(2.402264791363012e-1f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(6.931472028550421e-1f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.0f));
  const __m256i exponent = _mm256_slli_epi32(_mm256_cvtps_epi32(n), 23);
  return _mm256_castsi256_ps(_mm256_add_epi32(_mm256_castps_si256(p), exponent));
}

}  // namespace
}  // namespace pagedserve
