// Internal to the CPU attention kernels (attention_cpu.cpp): the inner loop that streams one
// range of keys of one sequence through the online softmax of blocks of query vectors, one block
// per KV head. Decode runs it with every KV head of a row, each block holding the G query heads
// of its group (one K/V read serves them all, and whole slots are read front to back); prefill
// with one KV head and the rows x G vectors of a Q tile. Two implementations with one contract:
// a portable one, an AVX2/FMA/F16C one (attention_tile_avx2.cpp) and an AVX-512 one
// (attention_tile_avx512.cpp), chosen by the caller.
//
// Keys are taken in tiles of kTileKeys slots that may span pages: each slot's K and V row is
// looked up through the block table on its own, so the tile size does not depend on page_size.
// Only slots in [key_begin, key_end) are ever read. Scores are kept in log2 units (q is
// pre-multiplied by softmax_scale * log2(e)) so the softmax uses exp2.
// Called from any pool thread; everything is passed in, nothing is shared.
#pragma once

#include <cstdint>

#include "core/dtype.h"

namespace pagedserve::attention_detail {

inline constexpr int kTileKeys = 64;

// The stride of a score row for M vectors: 1, 2 or 4 (several keys then share one 8-lane
// register in the softmax), else M rounded up to 8 (one register per 8 vectors of a key).
constexpr int padded_vectors(int num_vectors) {
  return num_vectors <= 1 ? 1 : num_vectors <= 2 ? 2 : num_vectors <= 4 ? 4 : (num_vectors + 7) / 8 * 8;
}

struct AttendBlock {
  DType dtype = DType::f32;  // of k_cache and v_cache
  int head_dim = 0;
  int num_vectors = 0;       // M query vectors
  int padded = 0;            // padded_vectors(M): the stride of a score row
  const float* q = nullptr;  // [M, head_dim] f32, already scaled by softmax_scale * log2(e)
  // Causal limits: vector v sees keys < key_limit[v]. Keys below min_key_limit are seen by
  // every vector, so only tiles reaching past it are masked.
  const std::int32_t* key_limit = nullptr;  // [padded]; lanes past M hold INT32_MAX
  std::int64_t min_key_limit = 0;

  const void* k_cache = nullptr;  // [num_pages, page_size, num_kv_heads, head_dim]
  const void* v_cache = nullptr;  // same
  std::int64_t page_stride = 0;   // elements per page: page_size * num_kv_heads * head_dim
  std::int64_t slot_stride = 0;   // elements per slot: num_kv_heads * head_dim
  std::int64_t head_offset = 0;   // elements: kv_head * head_dim
  int page_size = 0;
  const std::int32_t* pages = nullptr;  // [max_pages_per_seq] this sequence's block table row

  // Online softmax state, owned by the caller, carried across calls over consecutive ranges.
  float* acc = nullptr;      // [M, head_dim] unnormalised output
  float* row_max = nullptr;  // [padded] running max score (log2 units), -inf at the start
  float* row_sum = nullptr;  // [padded] running sum of exp2(score - row_max), 0 at the start
  float* scores = nullptr;   // [kTileKeys, padded] scratch
  float* alpha = nullptr;    // [padded] scratch
};

// blocks[0..num_blocks) share everything but head_offset, q and the softmax state; they may share
// `scores` and `alpha` (used one block at a time).
void attend_keys_portable(const AttendBlock* blocks, int num_blocks, std::int64_t key_begin,
                          std::int64_t key_end);

// Requires head_dim % 16 == 0 and a CPU with AVX2, FMA and F16C (see avx2_attention_usable).
void attend_keys_avx2(const AttendBlock* blocks, int num_blocks, std::int64_t key_begin,
                      std::int64_t key_end);

// Same contract; requires head_dim % 16 == 0 and AVX-512 F/BW/VL/DQ (see avx512_attention_usable).
void attend_keys_avx512(const AttendBlock* blocks, int num_blocks, std::int64_t key_begin,
                        std::int64_t key_end);

bool avx2_attention_usable(int head_dim);
bool avx512_attention_usable(int head_dim);

}  // namespace pagedserve::attention_detail
