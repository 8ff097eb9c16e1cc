// Prefill/mixed paged attention on mma.sync, for head_dim 80, 96 and 256 (64 and 128 run on
// prefill_attention_wgmma_kernel.cuh unless built with PAGEDSERVE_PREFILL_WGMMA=0): one CTA per (Q tile of a sequence, kv head); the tile -> sequence
// map comes from query_start_len on the device (see attention_tile.cuh for the shared loop).
// The grid is 1-D, kv head fastest: blockIdx.x = unit * num_kv_heads + kv_head, so CTAs are
// dispatched longest tile first across all heads of a sequence, and the short tiles of one
// (sequence, head) no longer run alone at the end while the long tiles of the next wait.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/cuda/attention_tile.cuh"

namespace pagedserve::cuda_detail {

template <typename T, int D>
__global__ void __launch_bounds__(AttentionConfig<D, false>::kThreads, AttentionConfig<D, false>::kMinBlocks)
    prefill_attention_kernel(const AttentionParams p) {
  using Cfg = AttentionConfig<D, false>;
#ifdef PAGEDSERVE_PREFILL_STAMPS
  const unsigned long long stamp_entry = clock64();
  const unsigned long long stamp_global_entry = global_timer_ns();
  unsigned long long* stamp = g_prefill_stamps + static_cast<long long>(blockIdx.x) * kStampCols;
  const bool stamping = threadIdx.x == 0 && blockIdx.x < kStampRows;
#endif
  extern __shared__ __align__(16) unsigned char smem[];
  __shared__ int warp_totals[Cfg::kWarps];
  T* s_q = reinterpret_cast<T*>(smem);
  T* s_kv = reinterpret_cast<T*>(smem + Cfg::kQBytes);
  int* prefix = reinterpret_cast<int*>(smem + Cfg::fixed_smem_bytes());

  const int group = p.heads_per_kv;
  const int tokens_per_tile = Cfg::kRows / group;
  block_exclusive_scan<Cfg::kThreads>(
      p.capacity,
      [&](int s) {
        const int q_len = p.query_start_len[s + 1] - p.query_start_len[s];
        return (p.seq_lens[s] > 0 && q_len > 0) ? (q_len + tokens_per_tile - 1) / tokens_per_tile : 0;
      },
      prefix, warp_totals);
  const int unit = static_cast<int>(blockIdx.x / p.num_kv_heads);
  const int kv_head = static_cast<int>(blockIdx.x % p.num_kv_heads);
  if (unit >= prefix[p.capacity]) {  // capacity-sized grid: spare CTAs leave at once
#ifdef PAGEDSERVE_PREFILL_STAMPS
    if (stamping) stamp[6] = ~0ull;
#endif
    return;
  }

  const int seq = find_row(prefix, p.capacity, unit);
  const int q_start = p.query_start_len[seq];
  const int q_len = p.query_start_len[seq + 1] - q_start;
  const int seq_len = p.seq_lens[seq];
  // Last tile of a sequence first: it sees the most keys (longest-first balancing).
  const int tiles = prefix[seq + 1] - prefix[seq];
  const int tile = tiles - 1 - (unit - prefix[seq]);
  const int tile_token0 = tile * tokens_per_tile;
  const int tile_tokens = min(tokens_per_tile, q_len - tile_token0);

  AttentionTile<T, D, false> work{&p, s_q, s_kv};
  work.seq = seq;
  work.kv_head = kv_head;
  work.first_token = q_start + tile_token0;
  work.valid_rows = tile_tokens * group;
  work.context_len = seq_len - q_len + tile_token0;
  work.kv_begin = 0;
  work.kv_end = min(seq_len, work.context_len + tile_tokens);  // the visible-K prefix of the tile
  work.causal = true;

  constexpr int kMTiles = Cfg::kMTiles;
  float row_max[kMTiles][2];
  float row_sum[kMTiles][2];
  float acc[kMTiles][D / 8][4];
#ifdef PAGEDSERVE_PREFILL_STAMPS
  const unsigned long long stamp_setup = clock64();
#endif
  work.run(row_max, row_sum, acc);
#ifdef PAGEDSERVE_PREFILL_STAMPS
  const unsigned long long stamp_loop = clock64();
#endif

  // Direct 4-byte stores from the accumulators. (Staging the tile in shared memory for 16-byte
  // coalesced stores cut the epilogue from 2.5 to 2.0 µs per CTA but measured 3-4% slower
  // overall; that build also spilled 16 bytes in this kernel.)
  const int warp = threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  T* out = static_cast<T*>(p.out);
#pragma unroll
  for (int m = 0; m < kMTiles; ++m) {
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      float sum = row_sum[m][i];
      sum += __shfl_xor_sync(0xffffffffu, sum, 1);
      sum += __shfl_xor_sync(0xffffffffu, sum, 2);
      const int row = (warp * kMTiles + m) * 16 + lane / 4 + i * 8;
      if (row >= work.valid_rows) continue;
      const float inv = 1.0f / sum;
      const int token = work.first_token + row / group;
      T* dst = out + ((static_cast<long long>(token) * p.num_kv_heads + work.kv_head) * group + row % group) * D;
#pragma unroll
      for (int nb = 0; nb < D / 8; ++nb) {
        store2(dst + nb * 8 + (lane % 4) * 2, acc[m][nb][2 * i] * inv, acc[m][nb][2 * i + 1] * inv);
      }
    }
  }
#ifdef PAGEDSERVE_PREFILL_STAMPS
  __syncthreads();
  if (stamping) {
    stamp[0] = sm_id();
    stamp[1] = stamp_entry;
    stamp[2] = stamp_setup;
    stamp[4] = stamp_loop;
    stamp[5] = clock64();
    stamp[6] = static_cast<unsigned long long>(work.num_tiles());
    stamp[7] = stamp_global_entry;
    stamp[8] = global_timer_ns();
  }
#endif
}

}  // namespace pagedserve::cuda_detail
