// Decode paged attention: a persistent grid over (row, K/V chunk, kv head) items, the split chosen
// on the device from seq_lens (see attention_tile.cuh for the shared loop).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/cuda/attention_tile.cuh"
#include "kernels/cuda/block_scan.cuh"
#include "kernels/cuda/grid_dependency.cuh"

namespace pagedserve::cuda_detail {

template <typename T, int D>
__global__ void __launch_bounds__(AttentionConfig<D, true>::kThreads, AttentionConfig<D, true>::kMinBlocks)
    decode_attention_kernel(const AttentionParams p) {
  using Cfg = AttentionConfig<D, true>;
  // Let the merge grid (a programmatic dependent) be launched now; it waits for this whole
  // grid to complete before reading anything, so this only hides its launch latency.
  allow_dependent_launch();
  extern __shared__ __align__(16) unsigned char smem[];
  __shared__ int warp_totals[Cfg::kWarps];
  __shared__ long long reduce_scratch[Cfg::kWarps];
  T* s_q = reinterpret_cast<T*>(smem);
  T* s_kv = reinterpret_cast<T*>(smem + Cfg::kQBytes);
  int* prefix = reinterpret_cast<int*>(smem + Cfg::fixed_smem_bytes());

  // The split, from seq_lens alone, identically in every CTA: aim for target_items items of
  // equal length; rows short enough stay whole.
  long long live_tokens = 0;
  long long live_rows = 0;
  // A row is live when it has K/V and a query (q_len 0 rows are skipped, like inactive ones).
  auto live_len = [&](int s) {
    const int len = p.seq_lens[s];
    return (len > 0 && p.query_start_len[s + 1] > p.query_start_len[s]) ? len : 0;
  };
  for (int s = threadIdx.x; s < p.capacity; s += Cfg::kThreads) {
    const int len = live_len(s);
    live_tokens += len;
    live_rows += len > 0 ? 1 : 0;
  }
  live_tokens = block_sum<Cfg::kThreads>(live_tokens, reduce_scratch);
  live_rows = block_sum<Cfg::kThreads>(live_rows, reduce_scratch);
  int chunk = 1 << 30;
  if (live_rows > 0) {
    const long long pairs = live_rows * p.num_kv_heads;
    const long long splits = max(1LL, p.target_items / pairs);
    const long long mean_len = (live_tokens + live_rows - 1) / live_rows;
    long long want = (mean_len + splits - 1) / splits;
    want = (want + Cfg::kKeys - 1) / Cfg::kKeys * Cfg::kKeys;
    chunk = static_cast<int>(min(max(want, static_cast<long long>(kMinDecodeChunk)), 1LL << 30));
  }
  block_exclusive_scan<Cfg::kThreads>(
      p.capacity,
      [&](int s) {
        const int len = live_len(s);
        return len > 0 ? (len + chunk - 1) / chunk : 0;
      },
      prefix, warp_totals);
  if (blockIdx.x == 0) {  // publish the split for combine_decode_kernel
    __shared__ int split_count;
    if (threadIdx.x == 0) split_count = 0;
    __syncthreads();
    for (int s = threadIdx.x; s < p.capacity; s += Cfg::kThreads) {
      const int chunks = prefix[s + 1] - prefix[s];
      p.row_chunks[s] = chunks;
      p.row_chunk_base[s] = prefix[s];
      if (chunks > 1) p.split_rows[atomicAdd(&split_count, 1)] = s;
    }
    __syncthreads();
    if (threadIdx.x == 0) *p.split_count = split_count;
  }
  const int total_items = prefix[p.capacity] * p.num_kv_heads;
  const int group = p.heads_per_kv;
  const int warp = threadIdx.x / 32;
  const int lane = threadIdx.x % 32;

  // The item a CTA works on, from its global index.
  auto make_item = [&](int item) {
    AttentionTile<T, D, true> work{&p, s_q, s_kv};
    const int unit = item / p.num_kv_heads;
    work.seq = find_row(prefix, p.capacity, unit);
    work.kv_head = item % p.num_kv_heads;
    work.first_token = p.query_start_len[work.seq];
    work.valid_rows = group;
    work.context_len = 0;
    work.kv_begin = (unit - prefix[work.seq]) * chunk;
    work.kv_end = min(p.seq_lens[work.seq], work.kv_begin + chunk);
    work.causal = false;
    return work;
  };

  int item = blockIdx.x;
  if (item >= total_items) return;
  AttentionTile<T, D, true> work = make_item(item);
  int stage0 = 0;
  int next_pages[AttentionTile<T, D, true>::kLoadIters];
  work.prologue(stage0, next_pages);
  while (true) {
    float row_max[1][2];  // decode warps own one 16-row m-tile
    float row_sum[1][2];
    float acc[1][D / 8][4];
    work.main_loop(stage0, next_pages, row_max, row_sum, acc);
    const int last_stage = (stage0 + work.num_tiles() - 1) % Cfg::kStages;
    __syncthreads();  // every warp is done with s_q and with the last tile's stage

    // Start the next item's copies now, into the stages the last tile did not use, so its
    // memory latency overlaps this item's merge (short rows make many items per CTA).
    const int next_item = item + gridDim.x;
    const bool has_next = next_item < total_items;
    AttentionTile<T, D, true> next_work = work;
    const int next_stage0 = (last_stage + 1) % Cfg::kStages;
    if (has_next) {
      next_work = make_item(next_item);
      next_work.prologue(next_stage0, next_pages);
    }

    // Each warp saw a quarter of every tile: publish (max, sum, out) through the last tile's
    // stage and merge across warps.
    float* merge = reinterpret_cast<float*>(work.k_stage(last_stage));  // [kWarps][16][D]
    float* merge_stats = merge + Cfg::kWarps * 16 * D;                   // [kWarps][16][2]
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      float sum = row_sum[0][i];
      sum += __shfl_xor_sync(0xffffffffu, sum, 1);
      sum += __shfl_xor_sync(0xffffffffu, sum, 2);
      const int row = lane / 4 + i * 8;
      float* dst = merge + (warp * 16 + row) * D;
#pragma unroll
      for (int nb = 0; nb < D / 8; ++nb) {
        *reinterpret_cast<float2*>(dst + nb * 8 + (lane % 4) * 2) = make_float2(acc[0][nb][2 * i], acc[0][nb][2 * i + 1]);
      }
      if (lane % 4 == 0) {
        merge_stats[(warp * 16 + row) * 2] = row_max[0][i];
        merge_stats[(warp * 16 + row) * 2 + 1] = sum;
      }
    }
    __syncthreads();
    const int chunks = prefix[work.seq + 1] - prefix[work.seq];
    T* out = static_cast<T*>(p.out);
    const long long out_row0 = (static_cast<long long>(work.first_token) * p.num_kv_heads + work.kv_head) * group;
    for (int idx = threadIdx.x; idx < group * (D / 2); idx += Cfg::kThreads) {
      const int row = idx / (D / 2);
      const int col = (idx % (D / 2)) * 2;
      float max_all = -INFINITY;
#pragma unroll
      for (int w = 0; w < Cfg::kWarps; ++w) max_all = fmaxf(max_all, merge_stats[(w * 16 + row) * 2]);
      float sum = 0.0f;
      float2 value = make_float2(0.0f, 0.0f);
#pragma unroll
      for (int w = 0; w < Cfg::kWarps; ++w) {
        const float weight = exp2f(merge_stats[(w * 16 + row) * 2] - max_all);
        sum += weight * merge_stats[(w * 16 + row) * 2 + 1];
        const float2 part = *reinterpret_cast<const float2*>(merge + (w * 16 + row) * D + col);
        value.x += weight * part.x;
        value.y += weight * part.y;
      }
      if (chunks == 1) {
        const float inv = 1.0f / sum;
        store2(out + (out_row0 + row) * D + col, value.x * inv, value.y * inv);
      } else {
        const long long slot = static_cast<long long>(item) * group + row;
        *reinterpret_cast<float2*>(p.partial_out + slot * D + col) = value;
        if (col == 0) {
          p.partial_max_sum[slot * 2] = max_all;
          p.partial_max_sum[slot * 2 + 1] = sum;
        }
      }
    }
    __syncthreads();  // the merge stage is the next item's stage kStages - 1
    if (!has_next) break;
    work = next_work;
    item = next_item;
    stage0 = next_stage0;
  }
  cp_async_wait<0>();
}

}  // namespace pagedserve::cuda_detail
