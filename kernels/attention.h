// The paged-attention contract (DESIGN.md §4, seed 000) that every backend implements.
//
// Two kernels run per layer over the same paged K/V cache:
//   - decode:  every live row has q_len == 1;
//   - prefill: ragged rows with context (chunked prefill and mixed batches).
// For sequence s: q_len = qsl[s+1] - qsl[s], context_len = seq_lens[s] - q_len, and query row i of
// it sees keys [0, context_len + i] (causal). Rows with seq_len 0 are inactive and cost nothing.
// Physical pages may be in any order; -1 entries and slots past seq_len are never read.
//
// Kernels never allocate and never synchronise with the host; they receive views. All of q,
// k_cache, v_cache and out share one dtype (bf16, f16, or f32 on the CPU); metadata is i32.
#pragma once

#include "core/tensor_view.h"

namespace pagedserve {

struct PagedAttentionArgs {
  TensorView q;                // [num_tokens, num_kv_heads, heads_per_kv, head_dim]
  TensorView k_cache;          // [num_pages, page_size, num_kv_heads, head_dim]
  TensorView v_cache;          // [num_pages, page_size, num_kv_heads, head_dim]
  TensorView block_table;      // [batch_capacity, max_pages_per_seq] i32, -1 = no page
  TensorView seq_lens;         // [batch_capacity] i32, live length after this step's tokens
  TensorView query_start_len;  // [batch_capacity + 1] i32, cumulative query rows
  TensorView out;              // [num_tokens, num_kv_heads, heads_per_kv, head_dim]
  float softmax_scale = 1.0f;
  // Reserved for Mistral/Gemma-2 style models; kernels reject non-default values today.
  int sliding_window = 0;      // 0 = unlimited
  float logit_softcap = 0.0f;  // 0 = none
};

// Writes this step's new K/V rows into the cache: row t goes to slot slot_mapping[t], i.e. page
// slot / page_size, offset slot % page_size. Slots < 0 are skipped (padding tokens).
struct KVCacheWriteArgs {
  TensorView k_new;         // [num_tokens, num_kv_heads, head_dim]
  TensorView v_new;         // [num_tokens, num_kv_heads, head_dim]
  TensorView slot_mapping;  // [num_tokens] i32
  TensorView k_cache;       // [num_pages, page_size, num_kv_heads, head_dim]
  TensorView v_cache;       // [num_pages, page_size, num_kv_heads, head_dim]
};

}  // namespace pagedserve
