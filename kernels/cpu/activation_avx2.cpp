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
  if (i < count) {
    alignas(32) float g[8] = {}, u[8] = {}, o[8];
    for (std::int64_t j = i; j < count; ++j) {
      g[j - i] = gate[j];
      u[j - i] = up[j];
    }
    _mm256_store_ps(o, silu_mul8(_mm256_load_ps(g), _mm256_load_ps(u)));
    for (std::int64_t j = i; j < count; ++j) out[j] = o[j - i];
  }
}

}  // namespace pagedserve
