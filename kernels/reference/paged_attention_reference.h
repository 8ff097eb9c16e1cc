// Naive, obviously-correct paged attention and K/V cache write: the oracles every optimised
// kernel (CPU and CUDA) is tested against. Tests only: slow on purpose.
//
// One query row at a time: gather its visible keys page by page through block_table, compute
// every score, the softmax and the weighted sum of values in f64, round once into `out`.
// Inputs are CPU views of f32, bf16 or f16 (one dtype for q, caches and out); metadata is i32.
// Shapes, dtypes and metadata contents (monotone query_start_len, seq_lens >= q_len, every
// page a row needs inside [0, num_pages)) are checked; violations throw std::invalid_argument.
// sliding_window and logit_softcap must be 0 (reserved, rejected like any other bad argument).
// Only the rows of `out` that belong to a live query are written. Any thread; no state.
#pragma once

#include "kernels/attention.h"

namespace pagedserve {

void paged_attention_reference(const PagedAttentionArgs& args);

// Copies k_new/v_new row t into the cache slot slot_mapping[t] (page = slot / page_size,
// offset = slot % page_size); slots < 0 are skipped. k_new/v_new may have any float dtype and
// are converted (round to nearest even) to the cache dtype. Throws std::invalid_argument on bad
// shapes, dtypes or a slot past the cache.
void write_kv_cache_reference(const KVCacheWriteArgs& args);

}  // namespace pagedserve
