// Paged attention on the CPU: the decode kernel, the prefill/mixed kernel and the K/V cache
// write, implementing the contract of kernels/attention.h (DESIGN.md §4). Tested against
// kernels/reference/paged_attention_reference.h.
//
// Work follows live tokens only: rows with seq_len 0 (or no query rows) cost nothing; a Q tile
// streams only its visible prefix min(seq_len, context_len + tile_end); pages past it and -1
// pages are never touched. Parallel over the pool: decode over (row, kv head, K/V split), with
// splits only when rows x kv heads cannot keep every thread busy (partials merged with
// log-sum-exp); prefill over (row, Q tile, kv head), longest first. One K/V read serves all heads
// of a GQA group. Online softmax in f32; AVX-512 or AVX2/FMA/F16C inner loops when the CPU has
// them and head_dim % 16 == 0, a portable loop otherwise.
//
// Caller: one thread at a time per ThreadPool (the engine thread, a test, a bench). Bad shapes,
// dtypes or metadata (sliding_window / logit_softcap != 0 included) throw std::invalid_argument
// before any work. The kernels keep per-thread scratch (thread_local) that grows to the largest
// problem seen and is then reused; they never allocate in steady state.
#pragma once

#include "core/thread_pool.h"
#include "kernels/attention.h"
#include "kernels/cpu/kv_cache_write.h"  // write_kv_cache, the third kernel of a step

namespace pagedserve {

enum class AttentionPath {
  automatic,  // the widest of AVX-512 / AVX2 / portable that the CPU and head_dim allow
  avx2,       // AVX2 if allowed, else portable (what an AVX2-only CPU runs); for tests and benches
  portable,   // the plain C++ loop (what a CPU without AVX2 runs); for tests and benches
};

// Every row has q_len 1 (decode) or 0 (inactive). q, k_cache, v_cache, out: one of f32/bf16/f16.
void decode_attention(const PagedAttentionArgs& args, ThreadPool& pool,
                      AttentionPath path = AttentionPath::automatic);

// Ragged rows: any q_len, with or without context (chunked prefill, mixed batches).
void prefill_attention(const PagedAttentionArgs& args, ThreadPool& pool,
                       AttentionPath path = AttentionPath::automatic);

}  // namespace pagedserve
