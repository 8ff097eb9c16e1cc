// Internal to attention_tile_avx2.cpp and attention_tile_avx512.cpp: the parts of the tile loop
// both share (exp2, lane sums, masking, the online softmax update, slot lookup, prefetch and the
// loop itself), written with 8-lane (AVX2) intrinsics. Each of the two files compiles them for
// its own target. Everything here has internal linkage on purpose: an inline function with
// external linkage would be emitted by both files, and the linker could keep the AVX-512 copy
// for the AVX2 path. Include nothing here that defines inline functions with external linkage.
#pragma once

#include <immintrin.h>

#include <cstdint>

#include "core/half.h"  // the bf16 / f16 element types only
#include "kernels/cpu/attention_tile.h"
#include "kernels/cpu/exp2_simd.h"
#include "kernels/cpu/prefetch_range.h"  // prefetch_l1, prefetch_l2

namespace pagedserve::attention_detail {
namespace {  // NOLINT: see above

constexpr std::int64_t smaller(std::int64_t a, std::int64_t b) { return a < b ? a : b; }
constexpr std::int64_t larger(std::int64_t a, std::int64_t b) { return a < b ? b : a; }

// 2^x for x <= 0 (scores minus their max), relative error ~2e-7; 0 below -126 and for -inf.
inline __m256 exp2_nonpositive(__m256 x) {
  const __m256 too_small = _mm256_cmp_ps(x, _mm256_set1_ps(-126.0f), _CMP_LT_OQ);
  return _mm256_andnot_ps(too_small, exp2_in_range(_mm256_max_ps(x, _mm256_set1_ps(-126.0f))));
}

// Sums each of R accumulators across its lanes and stores the R sums to out[0..R).
template <int R>
inline void store_lane_sums(const __m256* a, float* out) {
  if constexpr (R == 8) {
    const __m256 h0 = _mm256_hadd_ps(_mm256_hadd_ps(a[0], a[1]), _mm256_hadd_ps(a[2], a[3]));
    const __m256 h1 = _mm256_hadd_ps(_mm256_hadd_ps(a[4], a[5]), _mm256_hadd_ps(a[6], a[7]));
    _mm256_storeu_ps(
        out, _mm256_add_ps(_mm256_permute2f128_ps(h0, h1, 0x20), _mm256_permute2f128_ps(h0, h1, 0x31)));
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

// Lane sums of KEYS x R accumulators (key-major) into scores[k * padded + r]: groups of 8
// through one hadd tree, smaller counts one key at a time.
template <int R, int KEYS>
inline void store_key_sums(const __m256* a, float* scores, int padded) {
  if constexpr ((KEYS * R) % 8 == 0) {
    for (int g = 0; g < KEYS * R; g += 8) {
      alignas(32) float sums[8];
      store_lane_sums<8>(a + g, sums);
      for (int e = 0; e < 8; ++e) scores[((g + e) / R) * padded + (g + e) % R] = sums[e];
    }
  } else {
    for (int k = 0; k < KEYS; ++k) store_lane_sums<R>(a + k * R, scores + k * padded);
  }
}

// Prefetch, issued a little per key so that the requests spread over the work:
//   - the next tile, towards L2, in address order: while head h of H works on key j of this
//     tile, piece h * n + j of the next tile's H * next_n row pieces (slot (h n + j) / H, head
//     (h n + j) % H) is fetched, so DRAM sees whole slots front to back, not one head's rows
//     scattered a slot_stride apart;
//   - this tile, towards L1, a few keys ahead of the score loop (K) and of the V pass (V).
template <typename T>
struct Prefetch {
  const T* const* next_k_slots = nullptr;  // [next_n] slot starts of the next tile
  const T* const* next_v_slots = nullptr;
  int next_n = 0;
  int head = 0;  // which of `heads` blocks is running
  int heads = 1;
  int n = 0;  // keys in this tile
  int row_bytes = 0;
  const T* const* k_rows = nullptr;  // [n] this tile, this head
  const T* const* v_rows = nullptr;

  void row(int j) const {
    const int piece = head * n + j;
    if (piece < heads * next_n) {
      const std::int64_t offset = static_cast<std::int64_t>(piece % heads) * row_bytes;
      const char* k = reinterpret_cast<const char*>(next_k_slots[piece / heads]) + offset;
      const char* v = reinterpret_cast<const char*>(next_v_slots[piece / heads]) + offset;
      for (int byte = 0; byte < row_bytes; byte += 64) {
        prefetch_l2(k + byte);
        prefetch_l2(v + byte);
      }
    }
    constexpr int kAhead = 8;
    if (j + kAhead < n) {
      const char* k = reinterpret_cast<const char*>(k_rows[j + kAhead]);
      for (int byte = 0; byte < row_bytes; byte += 64) prefetch_l1(k + byte);
    }
    if (j < n) {
      const char* v = reinterpret_cast<const char*>(v_rows[j]);
      for (int byte = 0; byte < row_bytes; byte += 64) prefetch_l1(v + byte);
    }
  }
};

// Slots at or past a vector's limit get -inf (exp2 -> 0). Only keys >= min_key_limit can be hidden.
void mask_tile(const AttendBlock& b, std::int64_t t0, int n) {
  const std::int64_t first = larger(0, b.min_key_limit - t0);
  const __m256 minus_inf = _mm256_set1_ps(-__builtin_inff());
  if (b.padded < 8) {
    for (std::int64_t j = first; j < n; ++j) {
      for (int v = 0; v < b.num_vectors; ++v) {
        if (t0 + j >= b.key_limit[v]) b.scores[j * b.padded + v] = -__builtin_inff();
      }
    }
    return;
  }
  for (std::int64_t j = first; j < n; ++j) {
    const __m256i key = _mm256_set1_epi32(static_cast<std::int32_t>(t0 + j));
    for (int v = 0; v < b.padded; v += 8) {
      const __m256i limit = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.key_limit + v));
      const __m256 hidden =
          _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_add_epi32(key, _mm256_set1_epi32(1)), limit));
      float* s = b.scores + j * b.padded + v;
      _mm256_storeu_ps(s, _mm256_blendv_ps(_mm256_loadu_ps(s), minus_inf, hidden));
    }
  }
}

template <bool kMax>
inline __m256 combine(__m256 a, __m256 b) {
  if constexpr (kMax) {
    return _mm256_max_ps(a, b);
  } else {
    return _mm256_add_ps(a, b);
  }
}

// Lane l of the result: max (or sum) over the lanes of x congruent to l modulo `period` (1, 2, 4).
template <bool kMax>
inline __m256 fold_lanes(__m256 x, int period) {
  x = combine<kMax>(x, _mm256_permute2f128_ps(x, x, 1));
  if (period <= 2) x = combine<kMax>(x, _mm256_shuffle_ps(x, x, _MM_SHUFFLE(1, 0, 3, 2)));
  if (period == 1) x = combine<kMax>(x, _mm256_shuffle_ps(x, x, _MM_SHUFFLE(2, 3, 0, 1)));
  return x;
}

// softmax_tile for padded in {1, 2, 4} (M <= 4, e.g. decode with a GQA group of 4): the scores are
// one flat array whose lane l belongs to vector l % padded, so no lane of a register is idle.
bool softmax_tile_small(const AttendBlock& b, int n) {
  const int period = b.padded;
  const int count = n * period;
  const int rounded = (count + 7) / 8 * 8;  // <= kTileKeys * padded: inside the scratch
  for (int i = count; i < rounded; ++i) b.scores[i] = -__builtin_inff();
  __m256 tile_max = _mm256_set1_ps(-__builtin_inff());
  for (int i = 0; i < rounded; i += 8) tile_max = _mm256_max_ps(tile_max, _mm256_loadu_ps(b.scores + i));
  tile_max = fold_lanes<true>(tile_max, period);
  alignas(32) float lanes[8];
  for (int l = 0; l < 8; ++l) lanes[l] = b.row_max[l % period];
  const __m256 old_max = _mm256_load_ps(lanes);
  const __m256 new_max = _mm256_max_ps(old_max, tile_max);
  __m256 sum = _mm256_setzero_ps();
  for (int i = 0; i < rounded; i += 8) {
    const __m256 p = exp2_nonpositive(_mm256_sub_ps(_mm256_loadu_ps(b.scores + i), new_max));
    _mm256_storeu_ps(b.scores + i, p);
    sum = _mm256_add_ps(sum, p);
  }
  sum = fold_lanes<false>(sum, period);
  const __m256 alpha = exp2_nonpositive(_mm256_sub_ps(old_max, new_max));
  const bool changed =
      (_mm256_movemask_ps(_mm256_cmp_ps(old_max, new_max, _CMP_NEQ_UQ)) & ((1 << period) - 1)) != 0;
  alignas(32) float alpha_lanes[8], sum_lanes[8], max_lanes[8];
  _mm256_store_ps(alpha_lanes, alpha);
  _mm256_store_ps(sum_lanes, sum);
  _mm256_store_ps(max_lanes, new_max);
  for (int v = 0; v < period; ++v) {
    b.alpha[v] = alpha_lanes[v];
    b.row_sum[v] = b.row_sum[v] * alpha_lanes[v] + sum_lanes[v];
    b.row_max[v] = max_lanes[v];
  }
  return changed;
}

// Turns the tile's scores into probabilities in place and updates max/sum; alpha gets the factor
// each vector's accumulator must be scaled by. Returns whether any alpha differs from 1.
bool softmax_tile(const AttendBlock& b, int n) {
  if (b.padded < 8) return softmax_tile_small(b, n);
  __m256 changed = _mm256_setzero_ps();
  for (int v = 0; v < b.padded; v += 8) {
    const __m256 old_max = _mm256_loadu_ps(b.row_max + v);
    __m256 new_max = old_max;
    for (int j = 0; j < n; ++j)
      new_max = _mm256_max_ps(new_max, _mm256_loadu_ps(b.scores + j * b.padded + v));
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
    for (int i = 0; i < b.head_dim; i += 8)
      _mm256_storeu_ps(acc + i, _mm256_mul_ps(_mm256_loadu_ps(acc + i), alpha));
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

// The tile loop; Ops supplies the K and V halves (score_all, accumulate_all) for one ISA.
template <typename T, typename Ops>
void attend_tiles(const AttendBlock* blocks, int num_blocks, std::int64_t key_begin, std::int64_t key_end) {
  const AttendBlock& first = blocks[0];
  const int row_bytes = first.head_dim * static_cast<int>(sizeof(T));
  const T* k_slots[2][kTileKeys];
  const T* v_slots[2][kTileKeys];
  const T* k_rows[kTileKeys];
  const T* v_rows[kTileKeys];
  const T* next_k_rows[kTileKeys];
  const T* next_v_rows[kTileKeys];
  int current = 0;
  int n = static_cast<int>(smaller(kTileKeys, key_end - key_begin));
  if (n <= 0) return;
  locate_slots(first, key_begin, n, k_slots[0], v_slots[0]);
  // The first tile has no tile before it to hide behind: ask for all of it now, in address order.
  for (int j = 0; j < n; ++j) {
    for (int byte = 0; byte < num_blocks * row_bytes; byte += 64) {
      prefetch_l2(reinterpret_cast<const char*>(k_slots[0][j] + first.head_offset) + byte);
      prefetch_l2(reinterpret_cast<const char*>(v_slots[0][j] + first.head_offset) + byte);
    }
  }
  for (std::int64_t t0 = key_begin; t0 < key_end;) {
    const std::int64_t next_t0 = t0 + n;
    const int next_n = static_cast<int>(smaller(kTileKeys, key_end - next_t0));
    if (next_n > 0) locate_slots(first, next_t0, next_n, k_slots[current ^ 1], v_slots[current ^ 1]);
    // Slots of the next tile from the first block's head on (the blocks are consecutive heads).
    offset_rows(k_slots[current ^ 1], next_n, first.head_offset, next_k_rows);
    offset_rows(v_slots[current ^ 1], next_n, first.head_offset, next_v_rows);
    for (int h = 0; h < num_blocks; ++h) {
      const AttendBlock& b = blocks[h];
      offset_rows(k_slots[current], n, b.head_offset, k_rows);
      offset_rows(v_slots[current], n, b.head_offset, v_rows);
      const Prefetch<T> prefetch{next_k_rows, next_v_rows, next_n, h,     num_blocks,
                                 n,           row_bytes,   k_rows, v_rows};
      Ops::score_all(b, k_rows, n, prefetch);
      if (t0 + n > b.min_key_limit) mask_tile(b, t0, n);
      if (softmax_tile(b, n)) rescale(b);
      Ops::accumulate_all(b, v_rows, n);
    }
    t0 = next_t0;
    n = next_n;
    current ^= 1;
  }
}

}  // namespace
}  // namespace pagedserve::attention_detail
