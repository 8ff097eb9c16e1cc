// The portable inner loop: plain C++ that any CPU runs, and the path for head_dim % 16 != 0.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "core/half.h"
#include "kernels/cpu/attention_tile.h"
#include "kernels/cpu/cpu_features.h"

namespace pagedserve::attention_detail {
namespace {

template <typename T>
void attend_tile(const AttendBlock& b, std::int64_t t0, int n, const T* const* k_slots,
                 const T* const* v_slots) {
  const int d = b.head_dim;
  const int m = b.num_vectors;
  const T* k_rows[kTileKeys];
  const T* v_rows[kTileKeys];
  for (int j = 0; j < n; ++j) {
    k_rows[j] = k_slots[j] + b.head_offset;
    v_rows[j] = v_slots[j] + b.head_offset;
  }
  {
    for (int j = 0; j < n; ++j) {
      for (int v = 0; v < m; ++v) {
        const float* q = b.q + static_cast<std::int64_t>(v) * d;
        float dot = 0.0f;
        for (int i = 0; i < d; ++i) dot += q[i] * load_as_float(k_rows[j][i]);
        const bool visible = t0 + j < b.key_limit[v];
        b.scores[j * b.padded + v] = visible ? dot : -std::numeric_limits<float>::infinity();
      }
    }
    for (int v = 0; v < m; ++v) {
      float tile_max = b.row_max[v];
      for (int j = 0; j < n; ++j) tile_max = std::max(tile_max, b.scores[j * b.padded + v]);
      const float alpha = std::exp2(b.row_max[v] - tile_max);
      float sum = 0.0f;
      for (int j = 0; j < n; ++j) {
        float& s = b.scores[j * b.padded + v];
        s = std::exp2(s - tile_max);
        sum += s;
      }
      b.row_sum[v] = b.row_sum[v] * alpha + sum;
      b.row_max[v] = tile_max;
      float* acc = b.acc + static_cast<std::int64_t>(v) * d;
      for (int i = 0; i < d; ++i) acc[i] *= alpha;
      for (int j = 0; j < n; ++j) {
        const float p = b.scores[j * b.padded + v];
        for (int i = 0; i < d; ++i) acc[i] += p * load_as_float(v_rows[j][i]);
      }
    }
  }
}

template <typename T>
void attend(const AttendBlock* blocks, int num_blocks, std::int64_t key_begin, std::int64_t key_end) {
  const AttendBlock& b = blocks[0];
  const T* k_slots[kTileKeys];
  const T* v_slots[kTileKeys];
  for (std::int64_t t0 = key_begin; t0 < key_end; t0 += kTileKeys) {
    const int n = static_cast<int>(std::min<std::int64_t>(kTileKeys, key_end - t0));
    for (int j = 0; j < n; ++j) {
      const std::int64_t slot = t0 + j;
      const std::int64_t offset =
          b.pages[slot / b.page_size] * b.page_stride + (slot % b.page_size) * b.slot_stride;
      k_slots[j] = static_cast<const T*>(b.k_cache) + offset;
      v_slots[j] = static_cast<const T*>(b.v_cache) + offset;
    }
    for (int h = 0; h < num_blocks; ++h) attend_tile<T>(blocks[h], t0, n, k_slots, v_slots);
  }
}

}  // namespace

// Here, not in the AVX2 file: code compiled with -mavx2 must not run before this check.
bool avx2_attention_usable(int head_dim) {
  static const bool cpu_has =
      __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && cpu_has_f16c();
  return cpu_has && head_dim % 16 == 0;
}

bool avx512_attention_usable(int head_dim) {
  static const bool cpu_has = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                              __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
                              avx2_attention_usable(16);
  return cpu_has && head_dim % 16 == 0;
}

void attend_keys_portable(const AttendBlock* blocks, int num_blocks, std::int64_t key_begin,
                          std::int64_t key_end) {
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
