#include "kernels/cpu/activation_avx2.h"

#include <immintrin.h>

#include "kernels/cpu/exp2_simd.h"

namespace pagedserve {
namespace {

// silu(g) * u for 8 lanes. A NaN gate stays NaN: the clamp turns its exponent into a number, but
// the final g * u keeps the NaN.
inline __m256 silu_mul8(__m256 g, __m256 u) {
  const __m256 minus_log2e = _mm256_set1_ps(-1.4426950408889634f);
  __m256 t = _mm256_mul_ps(g, minus_log2e);  // exp(-g) = 2^t
  t = _mm256_min_ps(_mm256_max_ps(t, _mm256_set1_ps(-126.0f)), _mm256_set1_ps(126.0f));
  const __m256 denominator = _mm256_add_ps(_mm256_set1_ps(1.0f), exp2_in_range(t));
  return _mm256_div_ps(_mm256_mul_ps(g, u), denominator);
}

}  // namespace

void silu_mul_avx2(const float* gate, const float* up, float* out, std::int64_t count) {
  std::int64_t i = 0;
  for (; i + 8 <= count; i += 8) {
    _mm256_storeu_ps(out + i, silu_mul8(_mm256_loadu_ps(gate + i), _mm256_loadu_ps(up + i)));
  }
  if (i < count) {  // the last 1-7 elements; masked-off lanes read 0 and are not stored
    const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(count - i)),
                                            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    _mm256_maskstore_ps(out + i, mask,
                        silu_mul8(_mm256_maskload_ps(gate + i, mask), _mm256_maskload_ps(up + i, mask)));
  }
}

}  // namespace pagedserve
