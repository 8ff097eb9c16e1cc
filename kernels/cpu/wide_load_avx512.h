// Loads of 16 weights widened to f32 lanes (bf16, f16 or f32 in memory; masked lanes read as 0),
// for the AVX-512 matmul kernels. Header-only; include it after the including file's
// `#pragma GCC target` names avx512f, avx512bw and f16c.
#pragma once

#include <immintrin.h>

#include <cstdint>

#include "core/dtype.h"

namespace pagedserve {

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
  static __m512 load(const Element* p, __mmask16 mask) { return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask, p)); }
};

template <>
struct Wide<DType::f32> {
  using Element = float;
  static __m512 load(const Element* p, __mmask16 mask) { return _mm512_maskz_loadu_ps(mask, p); }
};

}  // namespace pagedserve
