// The AVX2/FMA/F16C halves of the tile loop (attention_tile_simd.h has the rest). Per tile:
//   1. scores: for each key, the dot products with up to 8 query vectors at once (one K row
//      load and conversion feeds all of them), reduced across lanes with hadd trees;
//   2. mask, online softmax, rescale (shared);
//   3. acc += p * V, four vectors x 16 dims of accumulators in registers per pass.
// Built with -mavx2 -mfma -mf16c (kernels/CMakeLists.txt); called only after
// avx2_attention_usable() said yes.
#include <immintrin.h>

#include <cstdint>

#include "core/half.h"
#include "kernels/cpu/attention_tile.h"
#include "kernels/cpu/attention_tile_simd.h"

namespace pagedserve::attention_detail {
namespace {

inline __m256 load8(const float* p) { return _mm256_loadu_ps(p); }

// bf16 -> f32 is "bits << 16". A broadcast load (load port only) and one byte shuffle that puts
// element i in the top half of lane i do it without the shift, which would compete with the FMAs
// for ports 0/1.
inline __m256 load8(const bf16* p) {
  const __m256i both = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  const __m256i to_high_halves =
      _mm256_setr_epi8(-1, -1, 0, 1, -1, -1, 2, 3, -1, -1, 4, 5, -1, -1, 6, 7,  //
                       -1, -1, 8, 9, -1, -1, 10, 11, -1, -1, 12, 13, -1, -1, 14, 15);
  return _mm256_castsi256_ps(_mm256_shuffle_epi8(both, to_high_halves));
}

inline __m256 load8(const f16* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

// scores[(j + k) * padded + v0 + r] = q[v0 + r] . k_rows[j + k] for r < R, k < KEYS. Several keys
// at once give independent FMA chains and let each q load serve KEYS keys.
template <typename T, int R, int KEYS>
void score_keys(const AttendBlock& b, int v0, const T* const* k_rows, int j, const Prefetch<T>& prefetch) {
  const int d = b.head_dim;
  const float* q = b.q + static_cast<std::int64_t>(v0) * d;
  for (int k = 0; k < KEYS; ++k) prefetch.row(j + k);
  __m256 acc[KEYS * R];
  for (int a = 0; a < KEYS * R; ++a) acc[a] = _mm256_setzero_ps();
  for (int i = 0; i < d; i += 8) {
    __m256 kv[KEYS];
    for (int k = 0; k < KEYS; ++k) kv[k] = load8(k_rows[j + k] + i);
    for (int r = 0; r < R; ++r) {
      const __m256 qv = _mm256_loadu_ps(q + r * d + i);
      for (int k = 0; k < KEYS; ++k) acc[k * R + r] = _mm256_fmadd_ps(qv, kv[k], acc[k * R + r]);
    }
  }
  store_key_sums<R, KEYS>(acc, b.scores + static_cast<std::int64_t>(j) * b.padded + v0, b.padded);
}

template <typename T, int R>
void score_vectors(const AttendBlock& b, int v0, const T* const* k_rows, int n, const Prefetch<T>& prefetch) {
  constexpr int kKeys = R >= 8 ? 1 : 8 / R > 4 ? 4 : 8 / R;  // <= 8 accumulators of 16 registers
  int j = 0;
  for (; j + kKeys <= n; j += kKeys) score_keys<T, R, kKeys>(b, v0, k_rows, j, prefetch);
  for (; j < n; ++j) score_keys<T, R, 1>(b, v0, k_rows, j, prefetch);
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
void score_all_avx2(const AttendBlock& b, const T* const* k_rows, int n, const Prefetch<T>& prefetch) {
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
void accumulate_all_avx2(const AttendBlock& b, const T* const* v_rows, int n) {
  int v = 0;
  for (; v + 4 <= b.num_vectors; v += 4) accumulate_values<T, 4>(b, v, v_rows, n);
  if (v + 2 <= b.num_vectors) {
    accumulate_values<T, 2>(b, v, v_rows, n);
    v += 2;
  }
  if (v < b.num_vectors) accumulate_values<T, 1>(b, v, v_rows, n);
}

struct Avx2 {
  template <typename T>
  static void score_all(const AttendBlock& b, const T* const* k_rows, int n, const Prefetch<T>& prefetch) {
    score_all_avx2<T>(b, k_rows, n, prefetch);
  }
  template <typename T>
  static void accumulate_all(const AttendBlock& b, const T* const* v_rows, int n) {
    accumulate_all_avx2<T>(b, v_rows, n);
  }
};

}  // namespace

void attend_keys_avx2(const AttendBlock* blocks, int num_blocks, std::int64_t key_begin,
                      std::int64_t key_end) {
  switch (blocks[0].dtype) {
    case DType::f32:
      attend_tiles<float, Avx2>(blocks, num_blocks, key_begin, key_end);
      return;
    case DType::bf16:
      attend_tiles<bf16, Avx2>(blocks, num_blocks, key_begin, key_end);
      return;
    case DType::f16:
      attend_tiles<f16, Avx2>(blocks, num_blocks, key_begin, key_end);
      return;
    case DType::i32:
      return;
  }
}

}  // namespace pagedserve::attention_detail
