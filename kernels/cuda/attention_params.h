// Kernel-side parameters of the CUDA paged-attention kernels: raw pointers and sizes unpacked
// from PagedAttentionArgs by attention_cuda.cu. Plain values, passed by value to the kernels.
#pragma once

#include <cstdint>

namespace pagedserve::cuda_detail {

struct AttentionParams {
  const void* q;              // [num_tokens, num_kv_heads, heads_per_kv, head_dim]
  const void* k_cache;        // [num_pages, page_size, num_kv_heads, head_dim]
  const void* v_cache;        // [num_pages, page_size, num_kv_heads, head_dim]
  void* out;                  // [num_tokens, num_kv_heads, heads_per_kv, head_dim]
  const int* block_table;     // [capacity, max_pages_per_seq]
  const int* seq_lens;        // [capacity]
  const int* query_start_len; // [capacity + 1]
  int capacity;
  int max_pages_per_seq;
  int page_shift;             // log2(page_size); page sizes are powers of two
  int num_kv_heads;
  int heads_per_kv;
  float scale_log2;           // softmax_scale * log2(e): scores live in base-2 units

  // Decode split-KV only (null for prefill). Items are (row, chunk, kv head), numbered
  // w = (chunk_base[row] + chunk) * num_kv_heads + kv_head.
  float* partial_out;         // [max_items, heads_per_kv, head_dim] unnormalised outputs
  float* partial_max_sum;     // [max_items, heads_per_kv, 2] running max (base 2) and sum
  int* row_chunks;            // [capacity] chunks per row this step (0 = inactive)
  int* row_chunk_base;        // [capacity] exclusive prefix of row_chunks
  int* split_rows;            // [capacity] rows with more than one chunk, first *split_count valid
  int* split_count;           // [1]
  int target_items;           // how many items the split aims for (one per resident CTA)
};

// Smallest K/V chunk a decode row is split into: below this the merge costs more than it gains.
inline constexpr int kMinDecodeChunk = 256;

}  // namespace pagedserve::cuda_detail
