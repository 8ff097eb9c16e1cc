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

// bf16 -> f32 is "bits << 16". A broadcast load (load port only) and one byte shuffle that puts
// element i in the top half of lane i do it without the shift, which would compete with the FMAs
// for ports 0/1.
inline __m256 load8(const bf16* p) {
  const __m256i both = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  const __m256i to_high_halves = _mm256_setr_epi8(-1, -1, 0, 1, -1, -1, 2, 3, -1, -1, 4, 5, -1, -1, 6, 7,  //
                                                  -1, -1, 8, 9, -1, -1, 10, 11, -1, -1, 12, 13, -1, -1, 14, 15);
  return _mm256_castsi256_ps(_mm256_shuffle_epi8(both, to_high_halves));
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

// The next tile's K and V rows, fetched a row per key of this tile so that the requests spread
// over the tile instead of queueing up in one burst.
template <typename T>
struct Prefetch {
  const T* const* k_rows = nullptr;
  const T* const* v_rows = nullptr;
  int n = 0;
  int row_bytes = 0;

  void row(int j) const {
    if (j >= n) return;
    const char* k = reinterpret_cast<const char*>(k_rows[j]);
    const char* v = reinterpret_cast<const char*>(v_rows[j]);
    for (int byte = 0; byte < row_bytes; byte += 64) {
      _mm_prefetch(k + byte, _MM_HINT_T0);
      _mm_prefetch(v + byte, _MM_HINT_T0);
    }
  }
};

// scores[j * padded + v0 + r] = q[v0 + r] . k_rows[j] for r < R.
template <typename T, int R>
void score_vectors(const AttendBlock& b, int v0, const T* const* k_rows, int n, const Prefetch<T>& prefetch) {
  const int d = b.head_dim;
  const float* q = b.q + static_cast<std::int64_t>(v0) * d;
  for (int j = 0; j < n; ++j) {
    prefetch.row(j);
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
void score_all(const AttendBlock& b, const T* const* k_rows, int n, const Prefetch<T>& prefetch) {
  const Prefetch<T> none;
  int v = 0;
  for (; v + 8 <= b.num_vectors; v += 8) score_vectors<T, 8>(b, v, k_rows, n, v == 0 ? prefetch : none);
  if (v + 4 <= b.num_vectors) {
    score_vectors<T, 4>(b, v, k_rows, n, v == 0 ? prefetch : none);
    v += 4;
  }
  if (v + 2 <= b.num_vectors) {
    score_vectors<T, 2>(b, v, k_rows, n, v == 0 ? prefetch : none);
    v += 2;
  }
  if (v < b.num_vectors) score_vectors<T, 1>(b, v, k_rows, n, v == 0 ? prefetch : none);
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

// Slot start pointers (no head offset) of keys [t0, t0 + n).
template <typename T>
void locate_slots(const AttendBlock& b, std::int64_t t0, int n, const T** k_slots, const T** v_slots) {
  std::int64_t page_index = t0 / b.page_size;
  std::int64_t offset = t0 % b.page_size;
  std::int64_t page_start = b.pages[page_index] * b.page_stride;
  for (int j = 0; j < n; ++j) {
    if (offset == b.page_size) {
      offset = 0;
      page_start = b.pages[++page_index] * b.page_stride;
    }
    const std::int64_t element = page_start + offset * b.slot_stride;
    k_slots[j] = static_cast<const T*>(b.k_cache) + element;
    v_slots[j] = static_cast<const T*>(b.v_cache) + element;
    ++offset;
  }
}

template <typename T>
void offset_rows(const T* const* slots, int n, std::int64_t head_offset, const T** rows) {
  for (int j = 0; j < n; ++j) rows[j] = slots[j] + head_offset;
}

template <typename T>
void attend(const AttendBlock* blocks, int num_blocks, std::int64_t key_begin, std::int64_t key_end) {
  const AttendBlock& first = blocks[0];
  const int row_bytes = first.head_dim * static_cast<int>(sizeof(T));
  const T* k_slots[2][kTileKeys];
  const T* v_slots[2][kTileKeys];
  const T* k_rows[kTileKeys];
  const T* v_rows[kTileKeys];
  const T* next_k_rows[kTileKeys];
  const T* next_v_rows[kTileKeys];
  int current = 0;
  int n = static_cast<int>(std::min<std::int64_t>(kTileKeys, key_end - key_begin));
  if (n <= 0) return;
  locate_slots(first, key_begin, n, k_slots[0], v_slots[0]);
  for (int h = 0; h < num_blocks; ++h) {  // the first tile has no tile before it to hide behind
    offset_rows(k_slots[0], n, blocks[h].head_offset, k_rows);
    offset_rows(v_slots[0], n, blocks[h].head_offset, v_rows);
    for (int j = 0; j < n; ++j) Prefetch<T>{k_rows, v_rows, n, row_bytes}.row(j);
  }
  for (std::int64_t t0 = key_begin; t0 < key_end;) {
    const std::int64_t next_t0 = t0 + n;
    const int next_n = static_cast<int>(std::min<std::int64_t>(kTileKeys, key_end - next_t0));
    if (next_n > 0) locate_slots(first, next_t0, next_n, k_slots[current ^ 1], v_slots[current ^ 1]);
    for (int h = 0; h < num_blocks; ++h) {
      const AttendBlock& b = blocks[h];
      offset_rows(k_slots[current], n, b.head_offset, k_rows);
      offset_rows(v_slots[current], n, b.head_offset, v_rows);
      offset_rows(k_slots[current ^ 1], next_n, b.head_offset, next_k_rows);
      offset_rows(v_slots[current ^ 1], next_n, b.head_offset, next_v_rows);
      score_all<T>(b, k_rows, n, Prefetch<T>{next_k_rows, next_v_rows, next_n, row_bytes});
      if (t0 + n > b.min_key_limit) mask_tile(b, t0, n);
      if (softmax_tile(b, n)) rescale(b);
      accumulate_all<T>(b, v_rows, n);
    }
    t0 = next_t0;
    n = next_n;
    current ^= 1;
  }
}

}  // namespace

void attend_keys_avx2(const AttendBlock* blocks, int num_blocks, std::int64_t key_begin, std::int64_t key_end) {
  switch (blocks[0].dtype) {
    case DType::f32:
      attend<float>(blocks, num_blocks, key_begin, key_end);
      return;
    case DType::bf16:
      attend<bf16>(blocks, num_blocks, key_begin, key_end);
      return;
    case DType::f16:
      attend<f16>(blocks, num_blocks, key_begin, key_end);
      return;
    case DType::i32:
      return;
  }
}

}  // namespace pagedserve::attention_detail
