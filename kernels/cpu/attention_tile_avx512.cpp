// The AVX-512 halves of the tile loop (attention_tile_simd.h has the rest, in 8-lane code).
// 16-lane registers halve the FMA count against AVX2, and 32 of them hold 4 vectors x 64 dims
// of V accumulators per pass. Same algorithm as attention_tile_avx2.cpp:
//   scores: per key, up to 8 query vectors share one K row load; lanes reduced 16 -> 8 -> 1;
//   values: acc += p * V for 4 vectors x up to 64 dims per pass over the tile.
// Called only after avx512_attention_usable() said yes.
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")
// GCC 12's AVX-512 intrinsics start from _mm512_undefined_*(), which its own flow analysis then
// reports as uninitialised (a known false positive).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <cstdint>

#include "core/half.h"
#include "kernels/cpu/attention_tile.h"
#include "kernels/cpu/attention_tile_simd.h"

namespace pagedserve::attention_detail {
namespace {

inline __m512 load16(const float* p) { return _mm512_loadu_ps(p); }

// bf16 -> f32 is "bits << 16": one word permute that drops element i into the top half of lane i
// (zeroing the bottom halves) does it on port 5 alone.
inline __m512 load16(const bf16* p) {
  const __m512i idx = _mm512_set_epi16(15, 0, 14, 0, 13, 0, 12, 0, 11, 0, 10, 0, 9, 0, 8, 0,  //
                                       7, 0, 6, 0, 5, 0, 4, 0, 3, 0, 2, 0, 1, 0, 0, 0);
  const __m512i words = _mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  return _mm512_castsi512_ps(_mm512_maskz_permutexvar_epi16(0xAAAAAAAAu, idx, words));
}

inline __m512 load16(const f16* p) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}

// scores[(j + k) * padded + v0 + r] = q[v0 + r] . k_rows[j + k] for r < R, k < KEYS. Several keys
// at once give independent FMA chains and let each q load serve KEYS keys.
template <typename T, int R, int KEYS>
void score_keys(const AttendBlock& b, int v0, const T* const* k_rows, int j, const Prefetch<T>& prefetch) {
  const int d = b.head_dim;
  const float* q = b.q + static_cast<std::int64_t>(v0) * d;
  for (int k = 0; k < KEYS; ++k) prefetch.row(j + k);
  __m512 acc[KEYS * R];
  for (int a = 0; a < KEYS * R; ++a) acc[a] = _mm512_setzero_ps();
  for (int i = 0; i < d; i += 16) {
    __m512 kv[KEYS];
    for (int k = 0; k < KEYS; ++k) kv[k] = load16(k_rows[j + k] + i);
    for (int r = 0; r < R; ++r) {
      const __m512 qv = _mm512_loadu_ps(q + r * d + i);
      for (int k = 0; k < KEYS; ++k) acc[k * R + r] = _mm512_fmadd_ps(qv, kv[k], acc[k * R + r]);
    }
  }
  __m256 halves[KEYS * R];
  for (int a = 0; a < KEYS * R; ++a) {
    halves[a] = _mm256_add_ps(_mm512_castps512_ps256(acc[a]), _mm512_extractf32x8_ps(acc[a], 1));
  }
  store_key_sums<R, KEYS>(halves, b.scores + static_cast<std::int64_t>(j) * b.padded + v0, b.padded);
}

template <typename T, int R>
void score_vectors(const AttendBlock& b, int v0, const T* const* k_rows, int n, const Prefetch<T>& prefetch) {
  constexpr int kKeys = 16 / R > 8 ? 8 : 16 / R;  // <= 16 accumulators of 32 registers
  int j = 0;
  for (; j + kKeys <= n; j += kKeys) score_keys<T, R, kKeys>(b, v0, k_rows, j, prefetch);
  for (; j < n; ++j) score_keys<T, R, 1>(b, v0, k_rows, j, prefetch);
}

// acc[v0 + r][i0 .. i0 + 16 C) += sum_j p[j][v0 + r] * v_rows[j][i0 .. i0 + 16 C).
template <typename T, int R, int C>
void accumulate_pass(const AttendBlock& b, int v0, int i0, const T* const* v_rows, int n) {
  const int d = b.head_dim;
  float* acc = b.acc + static_cast<std::int64_t>(v0) * d + i0;
  __m512 sums[R][C];
  for (int r = 0; r < R; ++r) {
    for (int c = 0; c < C; ++c) sums[r][c] = _mm512_loadu_ps(acc + r * d + 16 * c);
  }
  const float* p = b.scores + v0;
  for (int j = 0; j < n; ++j, p += b.padded) {
    __m512 x[C];
    for (int c = 0; c < C; ++c) x[c] = load16(v_rows[j] + i0 + 16 * c);
    for (int r = 0; r < R; ++r) {
      const __m512 w = _mm512_set1_ps(p[r]);
      for (int c = 0; c < C; ++c) sums[r][c] = _mm512_fmadd_ps(w, x[c], sums[r][c]);
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int c = 0; c < C; ++c) _mm512_storeu_ps(acc + r * d + 16 * c, sums[r][c]);
  }
}

template <typename T, int R>
void accumulate_values(const AttendBlock& b, int v0, const T* const* v_rows, int n) {
  int i = 0;
  for (; i + 64 <= b.head_dim; i += 64) accumulate_pass<T, R, 4>(b, v0, i, v_rows, n);
  if (i + 32 <= b.head_dim) {
    accumulate_pass<T, R, 2>(b, v0, i, v_rows, n);
    i += 32;
  }
  if (i < b.head_dim) accumulate_pass<T, R, 1>(b, v0, i, v_rows, n);
}

struct Avx512 {
  template <typename T>
  static void score_all(const AttendBlock& b, const T* const* k_rows, int n, const Prefetch<T>& prefetch) {
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
  static void accumulate_all(const AttendBlock& b, const T* const* v_rows, int n) {
    int v = 0;
    for (; v + 4 <= b.num_vectors; v += 4) accumulate_values<T, 4>(b, v, v_rows, n);
    if (v + 2 <= b.num_vectors) {
      accumulate_values<T, 2>(b, v, v_rows, n);
      v += 2;
    }
    if (v < b.num_vectors) accumulate_values<T, 1>(b, v, v_rows, n);
  }
};

}  // namespace

void attend_keys_avx512(const AttendBlock* blocks, int num_blocks, std::int64_t key_begin,
                        std::int64_t key_end) {
  switch (blocks[0].dtype) {
    case DType::f32:
      attend_tiles<float, Avx512>(blocks, num_blocks, key_begin, key_end);
      return;
    case DType::bf16:
      attend_tiles<bf16, Avx512>(blocks, num_blocks, key_begin, key_end);
      return;
    case DType::f16:
      attend_tiles<f16, Avx512>(blocks, num_blocks, key_begin, key_end);
      return;
    case DType::i32:
      return;
  }
}

}  // namespace pagedserve::attention_detail
