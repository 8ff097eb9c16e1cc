// Prefill/mixed paged attention on Hopper's warpgroup tensor cores (wgmma, sm_90a) for head_dim
// 64 and 128; prefill_attention_kernel.cuh (mma.sync) serves the other head dims. Same contract
// and work split as that kernel: one CTA per (Q tile of a sequence, kv head), a 1-D grid with the
// kv head fastest and the last (longest) tile of each sequence first, the tile -> sequence map
// computed on the device from query_start_len, each tile streaming only its visible K prefix.
//
// A CTA holds 128 packed rows (row r = query token r / G, head r % G of the group, so one K/V
// tile serves every head of the group) as two warpgroups of 64 rows. Per 64-key tile, each
// warpgroup runs S = Q Kᵀ as wgmma with Q and K from shared memory, the online softmax on S in
// registers (base 2, lazy rescaling as in attention_tile.cuh), then O += P V as wgmma with P
// straight from registers (the S accumulator layout is the A-fragment layout) and V read
// transposed from shared memory. K/V tiles are gathered page by page with 16-byte cp.async
// into the 128-byte swizzled layout wgmma reads (wgmma_sm90.cuh), kStages deep; slots past the
// visible range are zero-filled, never read from the cache. Nothing synchronises with the host.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/cuda/attention_params.h"
#include "kernels/cuda/attention_tile.cuh"
#include "kernels/cuda/block_scan.cuh"
#include "kernels/cuda/mma_sm80.cuh"
#include "kernels/cuda/wgmma_sm90.cuh"

namespace pagedserve::cuda_detail {

// Tuning knobs, fixed at build time; overridable (-D) only for benchmark experiments.
#ifndef PAGEDSERVE_WGMMA_STAGES  // K/V stages in shared memory
#define PAGEDSERVE_WGMMA_STAGES 2
#endif
#ifndef PAGEDSERVE_WGMMA_MIN_BLOCKS  // resident CTAs per SM the register budget is cut for
#define PAGEDSERVE_WGMMA_MIN_BLOCKS 2
#endif

template <int D>
struct WgmmaPrefillConfig {
  static_assert(D == 64 || D == 128, "the wgmma prefill kernel covers head_dim 64 and 128");
  static constexpr int kWarpgroups = 2;
  static constexpr int kThreads = 128 * kWarpgroups;
  static constexpr int kRows = 64 * kWarpgroups;  // packed Q rows per CTA, 64 per warpgroup
  static constexpr int kKeys = 64;                // keys per K/V tile
  static constexpr int kStages = PAGEDSERVE_WGMMA_STAGES;
  static constexpr int kMinBlocks = PAGEDSERVE_WGMMA_MIN_BLOCKS;
  static constexpr int kChunksPerRow = D / 8;  // 16-byte chunks per head row
  static constexpr int kDSteps = D / 16;       // k-steps of Q Kᵀ
  static constexpr int kQBytes = kRows * D * 2;
  static constexpr int kTileBytes = kKeys * D * 2;  // one K or one V tile
  static constexpr int kAlignment = 1024;           // the 128-byte swizzle pattern repeats every 1024 bytes
  static constexpr int fixed_smem_bytes() { return kQBytes + kStages * 2 * kTileBytes; }
  // Dynamic shared memory: slack for the alignment, Q, the K/V stages, then the per-row
  // prefix [capacity + 1].
  static int smem_bytes(int capacity) { return kAlignment + fixed_smem_bytes() + (capacity + 1) * 4; }
};

template <typename T, int D>
struct WgmmaPrefillTile {
  using Cfg = WgmmaPrefillConfig<D>;
  static constexpr int kThreads = Cfg::kThreads;
  static constexpr int kRows = Cfg::kRows;
  static constexpr int kKeys = Cfg::kKeys;
  static constexpr int kStages = Cfg::kStages;
  static constexpr int kOutBlocks = D / 8;  // 8-column blocks of the output accumulator
  static constexpr int kChunksPerTile = kKeys * Cfg::kChunksPerRow;
  static_assert(kChunksPerTile % kThreads == 0, "every thread copies the same number of K/V chunks");
  static constexpr int kLoadIters = kChunksPerTile / kThreads;

  const AttentionParams* p;
  T* s_q;   // [D / 64, kRows, 64] swizzled
  T* s_kv;  // [kStages, 2 (K, V), D / 64, kKeys, 64] swizzled

  int seq;
  int kv_head;
  int first_token;  // global query token of packed row 0
  int valid_rows;   // packed rows that hold real (token, head) pairs
  int context_len;  // keys before the tile's first query token
  int kv_end;       // keys [0, kv_end) are streamed: the tile's visible prefix

  __device__ T* k_stage(int stage) const { return s_kv + stage * 2 * kKeys * D; }
  __device__ T* v_stage(int stage) const { return k_stage(stage) + kKeys * D; }
  __device__ int num_tiles() const { return (kv_end + kKeys - 1) / kKeys; }

  __device__ void load_q() const {
    const T* q = static_cast<const T*>(p->q);
    const int group = p->heads_per_kv;
    // floor(row / group) = (row * ceil(2^32 / group)) >> 32, exact for row, group < 2^16.
    const unsigned long long magic = ((1ull << 32) + group - 1) / static_cast<unsigned>(group);
#pragma unroll 1
    for (int c = threadIdx.x; c < kRows * Cfg::kChunksPerRow; c += kThreads) {
      const int row = c / Cfg::kChunksPerRow;
      const int chunk = c % Cfg::kChunksPerRow;
      const bool valid = row < valid_rows;
      const int token_in_tile = static_cast<int>((static_cast<unsigned long long>(row) * magic) >> 32);
      const int head = row - token_in_tile * group;
      const long long token = first_token + token_in_tile;
      const T* src = valid ? q + ((token * p->num_kv_heads + kv_head) * group + head) * D + chunk * 8 : q;
      cp_async_16(s_q + swizzled_chunk_offset<kRows>(row, chunk), src, valid);
    }
  }

  // Thread t copies chunks t + i * kThreads of every tile; their pages are looked up one tile
  // ahead of the copies so the block-table latency hides behind the current tile's math.
  __device__ void lookup_pages(int key0, int (&page)[kLoadIters]) const {
    const int* pages = p->block_table + static_cast<long long>(seq) * p->max_pages_per_seq;
#pragma unroll
    for (int i = 0; i < kLoadIters; ++i) {
      const int token = key0 + (threadIdx.x + i * kThreads) / Cfg::kChunksPerRow;
      page[i] = token < kv_end ? __ldg(pages + (token >> p->page_shift)) : -1;
    }
  }

  __device__ void issue_kv(int stage, int key0, const int (&page)[kLoadIters]) const {
    const T* k_cache = static_cast<const T*>(p->k_cache);
    const T* v_cache = static_cast<const T*>(p->v_cache);
    const int page_mask = (1 << p->page_shift) - 1;
    T* k_dst = k_stage(stage);
    T* v_dst = v_stage(stage);
#pragma unroll
    for (int i = 0; i < kLoadIters; ++i) {
      const int c = threadIdx.x + i * kThreads;
      const int key = c / Cfg::kChunksPerRow;
      const int chunk = c % Cfg::kChunksPerRow;
      const bool valid = page[i] >= 0;  // tokens past kv_end were given -1
      long long offset = 0;
      if (valid) {
        const long long slot =
            (static_cast<long long>(page[i]) << p->page_shift) + ((key0 + key) & page_mask);
        offset = (slot * p->num_kv_heads + kv_head) * D + chunk * 8;
      }
      const int dst = swizzled_chunk_offset<kKeys>(key, chunk);
      cp_async_16(k_dst + dst, k_cache + offset, valid);
      cp_async_16(v_dst + dst, v_cache + offset, valid);
    }
  }

  // Runs the whole K/V loop. On return, per thread, for its rows (warpgroup row0 + 16 (warp % 4)
  // + lane / 4, and + 8): the running max (base 2), the thread's part of the row sum (not yet
  // reduced across the quad) and the unnormalised output fragments. No copy is in flight then.
  __device__ void run(float (&row_max)[2], float (&row_sum)[2], float (&acc)[kOutBlocks][4]) const {
    const int warpgroup = threadIdx.x / 128;
    const int lane = threadIdx.x % 32;
    const int group = p->heads_per_kv;
    const int wg_row0 = warpgroup * 64;
    const int thread_row0 = wg_row0 + ((threadIdx.x / 32) % 4) * 16 + lane / 4;

#pragma unroll
    for (int i = 0; i < 2; ++i) {
      row_max[i] = -INFINITY;
      row_sum[i] = 0.0f;
    }
#pragma unroll
    for (int nb = 0; nb < kOutBlocks; ++nb) {
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[nb][e] = 0.0f;
    }

    // Causal limits: row r sees keys < context_len + r / G + 1. The warpgroup skips tiles no
    // row of it sees and masks only tiles that reach past what all of its rows see.
    int row_limit[2];
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      const int row = thread_row0 + 8 * i;
      row_limit[i] = row < valid_rows ? min(kv_end, context_len + row / group + 1) : kv_end;
    }
    const int wg_last_row = min(wg_row0 + 63, valid_rows - 1);
    const int wg_kv_end = wg_last_row < wg_row0 ? 0 : min(kv_end, context_len + wg_last_row / group + 1);
    const int wg_all_visible = min(kv_end, context_len + wg_row0 / group + 1);

    // Descriptors of this warpgroup's Q rows and of stage 0's K and V; stages and k-steps are
    // byte offsets added to the address field (>> 4), which never carries out of it.
    const std::uint64_t q_desc = smem_descriptor(smem_address(s_q) + wg_row0 * 128, 16, 1024);
    const std::uint64_t k_desc = smem_descriptor(smem_address(k_stage(0)), 16, 1024);
    const std::uint64_t v_desc = smem_descriptor(smem_address(v_stage(0)), kKeys * 128, 1024);
    constexpr std::uint32_t kStageStep = (2 * Cfg::kTileBytes) >> 4;

    int next_pages[kLoadIters];
    const int tiles = num_tiles();
    load_q();
#pragma unroll
    for (int st = 0; st < kStages - 1; ++st) {
      if (st < tiles) {
        lookup_pages(st * kKeys, next_pages);
        issue_kv(st, st * kKeys, next_pages);
      }
      cp_async_commit();
    }
    if (kStages - 1 < tiles) lookup_pages((kStages - 1) * kKeys, next_pages);

    for (int tile = 0; tile < tiles; ++tile) {
      cp_async_wait<kStages - 2>();
      fence_proxy_async_shared();
      __syncthreads();  // tile's copies have landed; every warpgroup is done with the stage refilled next
      {
        const int next = tile + kStages - 1;
        if (next < tiles) issue_kv(next % kStages, next * kKeys, next_pages);
        cp_async_commit();
        if (next + 1 < tiles) lookup_pages((next + 1) * kKeys, next_pages);
      }
      const int key0 = tile * kKeys;
      if (key0 >= wg_kv_end) continue;  // warpgroup-uniform: no row of it sees these keys
      const std::uint32_t stage_offset = (tile % kStages) * kStageStep;

      float score[kKeys / 8][4];  // S for this thread's 2 rows x 16 of the tile's keys
      wgmma_fence();
#pragma unroll
      for (int ks = 0; ks < Cfg::kDSteps; ++ks) {
        // k-step ks: atom ks / 4 (64 columns each), 32 bytes per k-step inside the atom.
        const std::uint32_t q_step = ((ks / 4) * kRows * 128 + (ks % 4) * 32) >> 4;
        const std::uint32_t k_step = ((ks / 4) * kKeys * 128 + (ks % 4) * 32) >> 4;
        wgmma_m64n64k16_ss<T>(score, q_desc + q_step, k_desc + stage_offset + k_step, ks > 0 ? 1 : 0);
      }
      wgmma_commit();
      wgmma_wait<0>();
      fence_registers(score);

      const bool needs_mask = key0 + kKeys > wg_all_visible;
      if (needs_mask) {
#pragma unroll
        for (int nb = 0; nb < kKeys / 8; ++nb) {
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            const int key = key0 + nb * 8 + (lane % 4) * 2 + (e % 2);
            if (key >= row_limit[e / 2]) score[nb][e] = -INFINITY;
          }
        }
      }

      // Online softmax on raw scores (the scale is folded into exp2's FMA; the max commutes
      // with a positive scale), rescaling only when a row's max grows past the threshold.
      float new_max[2];
      bool grow = false;
#pragma unroll
      for (int i = 0; i < 2; ++i) {
        const float tile_max = quad_row_max(score, i) * p->scale_log2;
        new_max[i] = tile_max > row_max[i] + kLazyRescaleThreshold ? tile_max : row_max[i];
        grow |= new_max[i] != row_max[i];
      }
      if (__any_sync(0xffffffffu, grow)) {
#pragma unroll
        for (int i = 0; i < 2; ++i) {
          // Unchanged rows keep 1 (also at -inf, where the difference would be NaN); a row
          // leaving -inf gets 0, its accumulators being 0 anyway.
          const float rescale = new_max[i] == row_max[i] ? 1.0f : exp2f(row_max[i] - new_max[i]);
          row_max[i] = new_max[i];
          row_sum[i] *= rescale;
#pragma unroll
          for (int nb = 0; nb < kOutBlocks; ++nb) {
            acc[nb][2 * i] *= rescale;
            acc[nb][2 * i + 1] *= rescale;
          }
        }
      }
      std::uint32_t p_frag[kKeys / 16][4];  // P as bf16/f16 A fragments, one per 16 keys
#pragma unroll
      for (int i = 0; i < 2; ++i) {
        // A row that has seen only masked keys keeps max -inf; subtract 0 then so exp2 gives 0.
        const float base = row_max[i] == -INFINITY ? 0.0f : row_max[i];
#pragma unroll
        for (int nb = 0; nb < kKeys / 8; ++nb) {
          const float p0 = exp2f(fmaf(score[nb][2 * i], p->scale_log2, -base));
          const float p1 = exp2f(fmaf(score[nb][2 * i + 1], p->scale_log2, -base));
          row_sum[i] += p0 + p1;
          // Keys nb * 8 .. + 7 are half (nb % 2) of A fragment nb / 2: registers {0, 1} for
          // the lower 8 keys, {2, 3} for the upper, i selecting the row (+ 8).
          p_frag[nb / 2][(nb % 2) * 2 + i] = pack2<T>(p0, p1);
        }
      }

      fence_registers(acc);
      wgmma_fence();
#pragma unroll
      for (int kk = 0; kk < kKeys / 16; ++kk) {
        const std::uint64_t desc = v_desc + stage_offset + ((kk * 16 * 128) >> 4);  // keys 16 kk ..
        if constexpr (D == 128) {
          wgmma_m64n128k16_rs<T>(acc, p_frag[kk], desc, 1);
        } else {
          wgmma_m64n64k16_rs<T>(acc, p_frag[kk], desc, 1);
        }
      }
      wgmma_commit();
      wgmma_wait<0>();
      fence_registers(acc);
    }
    cp_async_wait<0>();
  }
};

template <typename T, int D>
__global__ void __launch_bounds__(WgmmaPrefillConfig<D>::kThreads, WgmmaPrefillConfig<D>::kMinBlocks)
    prefill_attention_wgmma_kernel(const AttentionParams p) {
  using Cfg = WgmmaPrefillConfig<D>;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  __shared__ int warp_totals[Cfg::kThreads / 32];
  const std::uint32_t misalignment = smem_address(smem_raw) % Cfg::kAlignment;
  unsigned char* smem = smem_raw + (misalignment == 0 ? 0 : Cfg::kAlignment - misalignment);
  T* s_q = reinterpret_cast<T*>(smem);                                   // [D / 64, kRows, 64]
  T* s_kv = reinterpret_cast<T*>(smem + Cfg::kQBytes);                   // [kStages, 2, D / 64, kKeys, 64]
  int* prefix = reinterpret_cast<int*>(smem + Cfg::fixed_smem_bytes());  // [capacity + 1]

  // The tile map is the mma.sync kernel's, written out again: one shared helper for both
  // kernels measured 2.4% slower here (ptxas spilled 28 instead of 8 bytes; bench/RESULTS.md).
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
  if (unit >= prefix[p.capacity]) return;  // capacity-sized grid: spare CTAs leave at once

  const int seq = find_row(prefix, p.capacity, unit);
  const int q_start = p.query_start_len[seq];
  const int q_len = p.query_start_len[seq + 1] - q_start;
  const int seq_len = p.seq_lens[seq];
  // Last tile of a sequence first: it sees the most keys (longest-first balancing).
  const int tiles = prefix[seq + 1] - prefix[seq];
  const int tile = tiles - 1 - (unit - prefix[seq]);
  const int tile_token0 = tile * tokens_per_tile;
  const int tile_tokens = min(tokens_per_tile, q_len - tile_token0);

  WgmmaPrefillTile<T, D> work{&p, s_q, s_kv};
  work.seq = seq;
  work.kv_head = kv_head;
  work.first_token = q_start + tile_token0;
  work.valid_rows = tile_tokens * group;
  work.context_len = seq_len - q_len + tile_token0;
  work.kv_end = min(seq_len, work.context_len + tile_tokens);  // the visible-K prefix of the tile

  float row_max[2];
  float row_sum[2];
  float acc[D / 8][4];  // [8-column blocks of the output][fragment]
  work.run(row_max, row_sum, acc);

  const int lane = threadIdx.x % 32;
  const int thread_row0 = (threadIdx.x / 128) * 64 + ((threadIdx.x / 32) % 4) * 16 + lane / 4;
  T* out = static_cast<T*>(p.out);
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    float sum = row_sum[i];
    sum += __shfl_xor_sync(0xffffffffu, sum, 1);
    sum += __shfl_xor_sync(0xffffffffu, sum, 2);
    const int row = thread_row0 + 8 * i;
    if (row >= work.valid_rows) continue;
    const float inv = 1.0f / sum;
    const int token = work.first_token + row / group;
    T* dst = out + ((static_cast<long long>(token) * p.num_kv_heads + kv_head) * group + row % group) * D;
#pragma unroll
    for (int nb = 0; nb < D / 8; ++nb) {
      store2(dst + nb * 8 + (lane % 4) * 2, acc[nb][2 * i] * inv, acc[nb][2 * i + 1] * inv);
    }
  }
}

}  // namespace pagedserve::cuda_detail
