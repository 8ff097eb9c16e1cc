// The AVX2/FMA/F16C inner loop. Per tile of up to kTileKeys slots:
//   1. scores: for each key, the dot products with up to 8 query vectors at once (one K row
//      load and conversion feeds all of them), reduced across lanes with hadd trees;
//   2. mask the slots past a vector's causal limit (only on tiles that reach past the
//      smallest limit);
//   3. online softmax across 8 vectors per register: new max, exp2 of the scores, rescale;
//   4. acc += p * V, four vectors x 16 dims of accumulators in registers per pass.
// K/V rows of the next tile are prefetched while this one is computed: a head's rows sit one
// slot_stride apart, which the hardware prefetchers do not follow across pages.
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "core/half.h"
#include "kernels/cpu/attention_tile.h"

namespace pagedserve::attention_detail {
namespace {

inline __m256 load8(const float* p) { return _mm256_loadu_ps(p); }

inline __m256 load8(const bf16* p) {
  const __m128i bits = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(bits), 16));
}

inline __m256 load8(const f16* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }

// 2^x for x <= 0 (scores minus their max), relative error ~2e-7; 0 below -126 and for -inf.
inline __m256 exp2_nonpositive(__m256 x) {
  const __m256 too_small = _mm256_cmp_ps(x, _mm256_set1_ps(-126.0f), _CMP_LT_OQ);
  x = _mm256_max_ps(x, _mm256_set1_ps(-126.0f));
  const __m256 n = _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m256 f = _mm256_sub_ps(x, n);  // [-0.5, 0.5]
  // 2^f = 1 + f * P(f), coefficients from the Cephes exp2f minimax fit.
  __m256 p = _mm256_set1_ps(1.535336188319500e-4f);
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.339887440266574e-3f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(9.618437357674640e-3f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(5.550332471162809e-2f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(2.402264791363012e-1f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(6.931472028550421e-1f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.0f));
  const __m256i exponent = _mm256_slli_epi32(_mm256_cvtps_epi32(n), 23);
  const __m256 scaled = _mm256_castsi256_ps(_mm256_add_epi32(_mm256_castps_si256(p), exponent));
  return _mm256_andnot_ps(too_small, scaled);
}

// Sums each of R accumulators across its lanes and stores the R sums to out[0..R).
template <int R>
inline void store_lane_sums(const __m256* a, float* out) {
  if constexpr (R == 8) {
    const __m256 h0 = _mm256_hadd_ps(_mm256_hadd_ps(a[0], a[1]), _mm256_hadd_ps(a[2], a[3]));
    const __m256 h1 = _mm256_hadd_ps(_mm256_hadd_ps(a[4], a[5]), _mm256_hadd_ps(a[6], a[7]));
    _mm256_storeu_ps(out, _mm256_add_ps(_mm256_permute2f128_ps(h0, h1, 0x20), _mm256_permute2f128_ps(h0, h1, 0x31)));
  } else if constexpr (R == 4) {
    const __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(a[0], a[1]), _mm256_hadd_ps(a[2], a[3]));
    _mm_storeu_ps(out, _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1)));
  } else {
    for (int r = 0; r < R; ++r) {
      const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(a[r]), _mm256_extractf128_ps(a[r], 1));
      const __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
      out[r] = _mm_cvtss_f32(_mm_add_ss(s2, _mm_movehdup_ps(s2)));
    }
  }
}

// scores[j * padded + v0 + r] = q[v0 + r] . k_rows[j] for r < R.
template <typename T, int R>
void score_vectors(const AttendBlock& b, int v0, const T* const* k_rows, int n) {
  const int d = b.head_dim;
  const float* q = b.q + static_cast<std::int64_t>(v0) * d;
  for (int j = 0; j < n; ++j) {
    const T* k = k_rows[j];
    __m256 acc[R];
    for (int r = 0; r < R; ++r) acc[r] = _mm256_setzero_ps();
    for (int i = 0; i < d; i += 8) {
      const __m256 kv = load8(k + i);
      for (int r = 0; r < R; ++r) acc[r] = _mm256_fmadd_ps(_mm256_loadu_ps(q + r * d + i), kv, acc[r]);
    }
    store_lane_sums<R>(acc, b.scores + j * b.padded + v0);
  }
}

// acc[v0 + r] += sum_j p[j][v0 + r] * v_rows[j] for r < R, 16 dims per pass.
template <typename T, int R>
void accumulate_values(const AttendBlock& b, int v0, const T* const* v_rows, int n) {
  const int d = b.head_dim;
  float* acc = b.acc + static_cast<std::int64_t>(v0) * d;
  for (int i = 0; i < d; i += 16) {
    __m256 lo[R], hi[R];
    for (int r = 0; r < R; ++r) {
      lo[r] = _mm256_loadu_ps(acc + r * d + i);
      hi[r] = _mm256_loadu_ps(acc + r * d + i + 8);
    }
    const float* p = b.scores + v0;
    for (int j = 0; j < n; ++j, p += b.padded) {
      const __m256 x0 = load8(v_rows[j] + i);
      const __m256 x1 = load8(v_rows[j] + i + 8);
      for (int r = 0; r < R; ++r) {
        const __m256 w = _mm256_broadcast_ss(p + r);
        lo[r] = _mm256_fmadd_ps(w, x0, lo[r]);
        hi[r] = _mm256_fmadd_ps(w, x1, hi[r]);
      }
    }
    for (int r = 0; r < R; ++r) {
      _mm256_storeu_ps(acc + r * d + i, lo[r]);
      _mm256_storeu_ps(acc + r * d + i + 8, hi[r]);
    }
  }
}

template <typename T>
void score_all(const AttendBlock& b, const T* const* k_rows, int n) {
  int v = 0;
  for (; v + 8 <= b.num_vectors; v += 8) score_vectors<T, 8>(b, v, k_rows, n);
  if (v + 4 <= b.num_vectors) {
    score_vectors<T, 4>(b, v, k_rows, n);
    v += 4;
  }
  if (v + 2 <= b.num_vectors) {
    score_vectors<T, 2>(b, v, k_rows, n);
    v += 2;
  }
  if (v < b.num_vectors) score_vectors<T, 1>(b, v, k_rows, n);
}

template <typename T>
void accumulate_all(const AttendBlock& b, const T* const* v_rows, int n) {
  int v = 0;
  for (; v + 4 <= b.num_vectors; v += 4) accumulate_values<T, 4>(b, v, v_rows, n);
  if (v + 2 <= b.num_vectors) {
    accumulate_values<T, 2>(b, v, v_rows, n);
    v += 2;
  }
  if (v < b.num_vectors) accumulate_values<T, 1>(b, v, v_rows, n);
}

// Slots at or past a vector's limit get -inf (exp2 -> 0). Only keys >= min_key_limit can be hidden.
void mask_tile(const AttendBlock& b, std::int64_t t0, int n) {
  const std::int64_t first = std::max<std::int64_t>(0, b.min_key_limit - t0);
  const __m256 minus_inf = _mm256_set1_ps(-__builtin_inff());
  for (std::int64_t j = first; j < n; ++j) {
    const __m256i key = _mm256_set1_epi32(static_cast<std::int32_t>(t0 + j));
    for (int v = 0; v < b.padded; v += 8) {
      const __m256i limit = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.key_limit + v));
      const __m256 hidden = _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_add_epi32(key, _mm256_set1_epi32(1)), limit));
      float* s = b.scores + j * b.padded + v;
      _mm256_storeu_ps(s, _mm256_blendv_ps(_mm256_loadu_ps(s), minus_inf, hidden));
    }
  }
}

// Turns the tile's scores into probabilities in place and updates max/sum; alpha gets the factor
// each vector's accumulator must be scaled by. Returns whether any alpha differs from 1.
bool softmax_tile(const AttendBlock& b, int n) {
  __m256 changed = _mm256_setzero_ps();
  for (int v = 0; v < b.padded; v += 8) {
    const __m256 old_max = _mm256_loadu_ps(b.row_max + v);
    __m256 new_max = old_max;
    for (int j = 0; j < n; ++j) new_max = _mm256_max_ps(new_max, _mm256_loadu_ps(b.scores + j * b.padded + v));
    __m256 sum = _mm256_setzero_ps();
    for (int j = 0; j < n; ++j) {
      float* s = b.scores + j * b.padded + v;
      const __m256 p = exp2_nonpositive(_mm256_sub_ps(_mm256_loadu_ps(s), new_max));
      _mm256_storeu_ps(s, p);
      sum = _mm256_add_ps(sum, p);
    }
    const __m256 alpha = exp2_nonpositive(_mm256_sub_ps(old_max, new_max));
    changed = _mm256_or_ps(changed, _mm256_cmp_ps(old_max, new_max, _CMP_NEQ_UQ));
    _mm256_storeu_ps(b.alpha + v, alpha);
    _mm256_storeu_ps(b.row_sum + v, _mm256_fmadd_ps(_mm256_loadu_ps(b.row_sum + v), alpha, sum));
    _mm256_storeu_ps(b.row_max + v, new_max);
  }
  return _mm256_movemask_ps(changed) != 0;
}

void rescale(const AttendBlock& b) {
  for (int v = 0; v < b.num_vectors; ++v) {
    const __m256 alpha = _mm256_broadcast_ss(b.alpha + v);
    float* acc = b.acc + static_cast<std::int64_t>(v) * b.head_dim;
    for (int i = 0; i < b.head_dim; i += 8) _mm256_storeu_ps(acc + i, _mm256_mul_ps(_mm256_loadu_ps(acc + i), alpha));
  }
}

template <typename T>
void locate_rows(const AttendBlock& b, const T* k_base, const T* v_base, std::int64_t t0, int n, const T** k_rows,
                 const T** v_rows) {
  std::int64_t page_index = t0 / b.page_size;
  std::int64_t offset = t0 % b.page_size;
  std::int64_t page_start = b.pages[page_index] * b.page_stride;
  for (int j = 0; j < n; ++j) {
    if (offset == b.page_size) {
      offset = 0;
      page_start = b.pages[++page_index] * b.page_stride;
    }
    const std::int64_t element = page_start + offset * b.slot_stride;
    k_rows[j] = k_base + element;
    v_rows[j] = v_base + element;
    ++offset;
  }
}

template <typename T>
void prefetch_rows(const T* const* rows, int n, int row_bytes) {
  for (int j = 0; j < n; ++j) {
    const char* row = reinterpret_cast<const char*>(rows[j]);
    for (int byte = 0; byte < row_bytes; byte += 64) _mm_prefetch(row + byte, _MM_HINT_T0);
  }
}

template <typename T>
void attend(const AttendBlock& b, std::int64_t key_begin, std::int64_t key_end) {
  const T* k_base = static_cast<const T*>(b.k_cache) + b.head_offset;
  const T* v_base = static_cast<const T*>(b.v_cache) + b.head_offset;
  const int row_bytes = b.head_dim * static_cast<int>(sizeof(T));
  const T* k_rows[2][kTileKeys];
  const T* v_rows[2][kTileKeys];
  int current = 0;
  int n = static_cast<int>(std::min<std::int64_t>(kTileKeys, key_end - key_begin));
  if (n <= 0) return;
  locate_rows(b, k_base, v_base, key_begin, n, k_rows[0], v_rows[0]);
  for (std::int64_t t0 = key_begin; t0 < key_end;) {
    const std::int64_t next_t0 = t0 + n;
    const int next_n = static_cast<int>(std::min<std::int64_t>(kTileKeys, key_end - next_t0));
    if (next_n > 0) {
      locate_rows(b, k_base, v_base, next_t0, next_n, k_rows[current ^ 1], v_rows[current ^ 1]);
      prefetch_rows(k_rows[current ^ 1], next_n, row_bytes);
      prefetch_rows(v_rows[current ^ 1], next_n, row_bytes);
    }
    score_all<T>(b, k_rows[current], n);
    if (t0 + n > b.min_key_limit) mask_tile(b, t0, n);
    if (softmax_tile(b, n)) rescale(b);
    accumulate_all<T>(b, v_rows[current], n);
    t0 = next_t0;
    n = next_n;
    current ^= 1;
  }
}

}  // namespace

void attend_keys_avx2(const AttendBlock& block, std::int64_t key_begin, std::int64_t key_end) {
  switch (block.dtype) {
    case DType::f32:
      attend<float>(block, key_begin, key_end);
      return;
    case DType::bf16:
      attend<bf16>(block, key_begin, key_end);
      return;
    case DType::f16:
      attend<f16>(block, key_begin, key_end);
      return;
    case DType::i32:
      return;
  }
}

}  // namespace pagedserve::attention_detail
