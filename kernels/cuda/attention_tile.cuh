// The CUDA paged-attention kernel template, shared by decode and prefill (DESIGN.md §4).
//
// One CTA works on a tile of "packed rows" of one KV head: row r is query token r / G and head
// r % G of the group (G = heads_per_kv), so every K/V tile loaded into shared memory serves all
// heads of the group (GQA packing). Scores and P·V run on tensor cores (mma.sync m16n8k16, f32
// accumulators); the online softmax (running max and sum, base 2) stays in registers. K/V tiles
// stream through a cp.async pipeline of kStages shared-memory stages, gathering each token's
// page through the block table; slots past the visible range are zero-filled, never read.
//
//   decode  (kDecode):  16 packed rows (one token, G <= 16 heads); the 4 warps split each 64-key
//                       tile and merge at the end. Persistent grid: each CTA derives the split
//                       (chunks per row) from seq_lens itself and strides over (row, chunk, head)
//                       items. Split rows leave partials for combine_decode_kernel.
//   prefill (!kDecode): 128 packed rows per CTA (4 warps x 32 rows) for head_dim <= 128, 8 x 16
//                       rows for 256, one Q tile per CTA; the grid is sized from num_tokens and
//                       capacity, and each CTA finds its sequence by a binary search over
//                       per-sequence tile counts computed from query_start_len. Each tile streams only its visible K prefix; masks are
//                       applied only on tiles that cross the causal diagonal or the tail.
// Nothing here synchronises with the host, so launches are CUDA-graph safe for any live rows.
//
// This file: the build-time configuration and AttentionTile, the per-item K/V loop both kernels
// share; the kernels are in prefill_attention_kernel.cuh, decode_attention_kernel.cuh and
// combine_decode_kernel.cuh.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/cuda/attention_params.h"
#include "kernels/cuda/block_scan.cuh"
#include "kernels/cuda/mma_sm80.cuh"

namespace pagedserve::cuda_detail {

// Tuning knobs, fixed at build time; overridable (-D) only for benchmark experiments.
#ifndef PAGEDSERVE_PREFILL_MTILES  // 16-row m-tiles per prefill warp (head_dim <= 128)
#define PAGEDSERVE_PREFILL_MTILES 2
#endif
#ifndef PAGEDSERVE_PREFILL_MIN_BLOCKS  // for head_dim <= 128; 256 fits one CTA per SM anyway
#define PAGEDSERVE_PREFILL_MIN_BLOCKS 2
#endif
#ifndef PAGEDSERVE_PREFILL_KEYS  // keys per prefill K/V tile for head_dim <= 128
#define PAGEDSERVE_PREFILL_KEYS 64
#endif
#ifndef PAGEDSERVE_PREFILL_STAGES
#define PAGEDSERVE_PREFILL_STAGES 2
#endif
#ifndef PAGEDSERVE_PREFILL_LAZY_RESCALE
#define PAGEDSERVE_PREFILL_LAZY_RESCALE 1
#endif
#ifndef PAGEDSERVE_PREFILL_Q_IN_REGISTERS
#define PAGEDSERVE_PREFILL_Q_IN_REGISTERS 0
#endif
#ifndef PAGEDSERVE_PREFILL_FOLD_SCALE  // exp2(fma(s, scale, -max)): the softmax scale costs no FMUL
#define PAGEDSERVE_PREFILL_FOLD_SCALE 1
#endif
#ifndef PAGEDSERVE_DECODE_PDL  // launch the split-KV merge as a programmatic dependent
#define PAGEDSERVE_DECODE_PDL 1
#endif
#ifndef PAGEDSERVE_DECODE_MIN_BLOCKS  // resident decode CTAs per SM the register budget is cut for
#define PAGEDSERVE_DECODE_MIN_BLOCKS 1
#endif
#ifndef PAGEDSERVE_DECODE_STAGES
#define PAGEDSERVE_DECODE_STAGES 3
#endif

#ifndef PAGEDSERVE_PREFILL_ROWS  // for head_dim <= 128; 256 keeps 128 (8 warps x 16 rows)
#define PAGEDSERVE_PREFILL_ROWS 128
#endif

// The running max a prefill row exponentiates against may lag the true max by up to this much
// (base 2): the accumulators are rescaled only when some row's max grows past it, so P stays
// <= 2^8 and most tiles skip the rescale (FlashAttention-4's lazy rescaling).
inline constexpr float kLazyRescaleThreshold = 8.0f;

template <int D, bool kDecode>
struct AttentionConfig {
  static_assert(D % 16 == 0 && D <= 256, "head_dim must be a multiple of 16, at most 256");
  // Prefill warps own kMTiles x 16 rows: each K/V fragment loaded from shared memory then feeds
  // kMTiles mma instead of one, which halves the ldmatrix traffic per mma at 2 (shared-memory
  // bandwidth, not the tensor pipe, bounded the 16-row version). head_dim 256 would not fit the
  // accumulators of 32 rows in registers.
  static constexpr int kMTiles = (kDecode || D > 128) ? 1 : PAGEDSERVE_PREFILL_MTILES;
  static constexpr int kRows = kDecode ? 16 : (D <= 128 ? PAGEDSERVE_PREFILL_ROWS : 128);  // packed rows per CTA
  static constexpr int kWarps = kDecode ? 4 : kRows / (16 * kMTiles);
  static constexpr int kThreads = kWarps * 32;
  static constexpr int kKeys = kDecode ? 64 : (D <= 128 ? PAGEDSERVE_PREFILL_KEYS : 32);  // keys per K/V tile
  static constexpr int kWarpKeys = kDecode ? kKeys / kWarps : kKeys;  // keys each warp scores
  static constexpr int kStages = kDecode ? PAGEDSERVE_DECODE_STAGES : PAGEDSERVE_PREFILL_STAGES;
  static constexpr bool kLazyRescale = !kDecode && PAGEDSERVE_PREFILL_LAZY_RESCALE;
  // Prefill (lazy-rescale path) keeps raw scores and takes the row max before scaling, which
  // needs a positive scale (checked on the host).
  static constexpr bool kFoldScale = kLazyRescale && PAGEDSERVE_PREFILL_FOLD_SCALE;

  static constexpr int kStride = D + 8;  // shared row stride (elements): +16 B kills bank conflicts
  static constexpr bool kQInRegisters = D <= 128 && (kDecode || PAGEDSERVE_PREFILL_Q_IN_REGISTERS);  // D = 256 would spill
  // Prefill: two CTAs of 4 warps x 32 rows per SM (with lazy rescaling) measured the same as one
  // CTA of 8 warps x 32 rows at 1x8192 (306 TFLOP/s) and a little better on short prompts
  // (16x512: 173 vs 165-168), with half the shared memory per CTA. Q is read from shared memory
  // at every k-step (32 rows of Q would not fit the registers).
  static constexpr int kMinBlocks = kDecode ? PAGEDSERVE_DECODE_MIN_BLOCKS : (D > 128 ? 1 : PAGEDSERVE_PREFILL_MIN_BLOCKS);
  static constexpr int kChunksPerRow = D / 8;  // 16-byte chunks per head row
  static_assert(kDecode || kWarps * 16 * kMTiles == kRows, "prefill warps must cover the Q tile");

  static constexpr int kQBytes = kRows * kStride * 2;
  static constexpr int kKVBytes = kStages * 2 * kKeys * kStride * 2;
  // Decode merges the 4 warps' (max, sum, out) through the stage of the item's last tile.
  static_assert(!kDecode || kWarps * kRows * (D + 2) * 4 <= 2 * kKeys * kStride * 2, "merge scratch must fit a stage");

  static constexpr int fixed_smem_bytes() { return kQBytes + kKVBytes; }
  // The block's dynamic shared memory: Q tile, K/V stages, then the per-row prefix [capacity + 1].
  static int smem_bytes(int capacity) { return fixed_smem_bytes() + (capacity + 1) * 4; }
};

// The largest score of one row of an m-tile over the keys of a tile: half i of each score block
// (0: the thread's fragment row, 1: that row + 8), then across the 4 threads of the quad that hold
// the row's other keys.
template <int kBlocks>
__device__ __forceinline__ float quad_row_max(const float (&blocks)[kBlocks][4], int i) {
  float row_max = -INFINITY;
#pragma unroll
  for (int nb = 0; nb < kBlocks; ++nb) row_max = fmaxf(row_max, fmaxf(blocks[nb][2 * i], blocks[nb][2 * i + 1]));
  row_max = fmaxf(row_max, __shfl_xor_sync(0xffffffffu, row_max, 1));
  return fmaxf(row_max, __shfl_xor_sync(0xffffffffu, row_max, 2));
}

#ifdef PAGEDSERVE_PREFILL_STAMPS
// Diagnostic builds only (bench variant): per-CTA clock stamps of the prefill kernel, read back
// by pagedserve_prefill_stamps() in attention_instances_prefill_bf16.cu. Row layout: smid,
// clock64 at entry / setup done / first tile ready / loop done / end, K/V tiles (~0 = spare
// CTA), globaltimer at entry / end, clock64 after Q's copies / after the prologue were issued.
inline constexpr int kStampRows = 8192;
inline constexpr int kStampCols = 12;
__device__ unsigned long long g_prefill_stamps[kStampRows * kStampCols];
__device__ __forceinline__ unsigned long long global_timer_ns() {
  unsigned long long t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}
__device__ __forceinline__ unsigned sm_id() {
  unsigned r;
  asm volatile("mov.u32 %0, %%smid;" : "=r"(r));
  return r;
}
#endif

template <typename T, int D, bool kDecode>
struct AttentionTile {
  using Cfg = AttentionConfig<D, kDecode>;
  static constexpr int kThreads = Cfg::kThreads;
  static constexpr int kRows = Cfg::kRows;
  static constexpr int kKeys = Cfg::kKeys;
  static constexpr int kStride = Cfg::kStride;
  static constexpr int kStages = Cfg::kStages;
  static constexpr int kWarpKeys = Cfg::kWarpKeys;
  static constexpr int kScoreBlocks = kWarpKeys / 8;  // n-blocks of 8 keys per warp
  static constexpr int kOutBlocks = D / 8;            // n-blocks of 8 output columns
  static constexpr int kDSteps = D / 16;              // k-steps of Q·Kᵀ
  static constexpr int kMTiles = Cfg::kMTiles;        // 16-row m-tiles per warp

  const AttentionParams* p;  // a pointer, not a reference: items are reassigned
  T* s_q;   // [kRows, kStride]
  T* s_kv;  // [kStages, 2 (K, V), kKeys, kStride]

  // What one work item covers.
  int seq;             // row of the batch (sequence)
  int kv_head;
  int first_token;     // global query token of packed row 0
  int valid_rows;      // packed rows that hold real (token, head) pairs
  int context_len;     // keys before the first query token of the sequence, plus tile offset
  int kv_begin;        // keys [kv_begin, kv_end) are streamed
  int kv_end;
  bool causal;         // prefill: row r sees keys < context_len + r / G + 1

  __device__ T* k_stage(int stage) const { return s_kv + (stage * 2) * kKeys * kStride; }
  __device__ T* v_stage(int stage) const { return s_kv + (stage * 2 + 1) * kKeys * kStride; }

  // Q's copies: a runtime loop (unrolling it made ptxas schedule the whole prefill kernel worse:
  // -5%), with the division by the run-time group done as a multiply. With `row / group` per
  // chunk the issue alone took ~3 µs per prefill CTA (clock stamps, bench variant STAMP).
  static constexpr int kQChunks = kRows * Cfg::kChunksPerRow;
  __device__ void load_q() const {
    const T* q = static_cast<const T*>(p->q);
    const int group = p->heads_per_kv;
    const int num_kv_heads = p->num_kv_heads;
    // floor(row / group) = (row * ceil(2^32 / group)) >> 32, exact for row, group < 2^16.
    const unsigned long long magic = ((1ull << 32) + group - 1) / static_cast<unsigned>(group);
    auto issue = [&](int c) {
      const int row = c / Cfg::kChunksPerRow;
      const int col = (c % Cfg::kChunksPerRow) * 8;
      const bool valid = row < valid_rows;
      const int token_in_tile = static_cast<int>((static_cast<unsigned long long>(row) * magic) >> 32);
      const int head = row - token_in_tile * group;
      const long long token = first_token + token_in_tile;
      const T* src = valid ? q + ((token * num_kv_heads + kv_head) * group + head) * D + col : q;
      cp_async_16(s_q + row * kStride + col, src, valid);
    };
#pragma unroll 1
    for (int c = threadIdx.x; c < kQChunks; c += kThreads) issue(c);
  }

  // Each thread copies the same chunk positions of every tile: iteration i covers chunk
  // threadIdx.x + i * kThreads. Page numbers are looked up one tile ahead of the copies
  // (lookup_pages, then issue_kv a loop iteration later) so the block-table read latency hides
  // behind the current tile's math instead of stalling the copy issue.
  static constexpr int kChunksPerTile = kKeys * Cfg::kChunksPerRow;
  static constexpr int kLoadIters = (kChunksPerTile + kThreads - 1) / kThreads;

  __device__ void lookup_pages(int key0, int (&page)[kLoadIters]) const {
    const int* pages = p->block_table + static_cast<long long>(seq) * p->max_pages_per_seq;
#pragma unroll
    for (int i = 0; i < kLoadIters; ++i) {
      const int c = threadIdx.x + i * kThreads;
      const int token = key0 + c / Cfg::kChunksPerRow;
      page[i] = (c < kChunksPerTile && token < kv_end) ? __ldg(pages + (token >> p->page_shift)) : -1;
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
      if (kChunksPerTile % kThreads != 0 && c >= kChunksPerTile) break;
      const int key = c / Cfg::kChunksPerRow;
      const int col = (c % Cfg::kChunksPerRow) * 8;
      const int token = key0 + key;
      const bool valid = page[i] >= 0;  // tokens past kv_end were given -1
      long long offset = 0;
      if (valid) {
        const long long slot = (static_cast<long long>(page[i]) << p->page_shift) + (token & page_mask);
        offset = (slot * p->num_kv_heads + kv_head) * D + col;
      }
      cp_async_16(k_dst + key * kStride + col, k_cache + offset, valid);
      cp_async_16(v_dst + key * kStride + col, v_cache + offset, valid);
    }
  }

  // A-operand fragments of this warp's 16 Q rows for k-step ks.
  __device__ void q_fragment(std::uint32_t (&a)[4], int warp_row0, int ks) const {
    const int lane = threadIdx.x % 32;
    const int row = warp_row0 + (lane % 8) + ((lane / 8) % 2) * 8;
    const int col = ks * 16 + (lane / 16) * 8;
    ldmatrix_x4(a, s_q + row * kStride + col);
  }

  __device__ int num_tiles() const { return (kv_end - kv_begin + kKeys - 1) / kKeys; }

  // Issues Q and the first kStages - 1 K/V tiles (tile t goes to stage (stage0 + t) % kStages,
  // one commit group per tile) and looks up the pages of tile kStages - 1. The decode kernel
  // calls this for its next item while it still merges the current one.
  __device__ void prologue(int stage0, int (&next_pages)[kLoadIters]) const {
    const int tiles = num_tiles();
    load_q();
#ifdef PAGEDSERVE_PREFILL_STAMPS
    if (!kDecode && threadIdx.x == 0 && blockIdx.x < kStampRows) g_prefill_stamps[blockIdx.x * kStampCols + 9] = clock64();
#endif
#pragma unroll
    for (int st = 0; st < kStages - 1; ++st) {
      if (st < tiles) {
        lookup_pages(kv_begin + st * kKeys, next_pages);
        issue_kv((stage0 + st) % kStages, kv_begin + st * kKeys, next_pages);
      }
      cp_async_commit();
    }
    if (kStages - 1 < tiles) lookup_pages(kv_begin + (kStages - 1) * kKeys, next_pages);
#ifdef PAGEDSERVE_PREFILL_STAMPS
    if (!kDecode && threadIdx.x == 0 && blockIdx.x < kStampRows) g_prefill_stamps[blockIdx.x * kStampCols + 10] = clock64();
#endif
  }

  // Runs the K/V loop of the item after prologue(stage0). On return: per thread, for its rows
  // warp_row0 + 16 m + lane/4 (+ 8) of each m-tile, the running max (base 2), the thread's part
  // of the sum (not yet reduced across the quad) and the unnormalised output fragments. No copy
  // of this item is in flight then, but warps may still read the last tile's stage: callers
  // synchronise before reusing shared memory.
  __device__ void main_loop(int stage0, int (&next_pages)[kLoadIters], float (&row_max)[kMTiles][2],
                            float (&row_sum)[kMTiles][2], float (&acc)[kMTiles][kOutBlocks][4]) const {
    const int warp = threadIdx.x / 32;
    const int lane = threadIdx.x % 32;
    const int warp_row0 = kDecode ? 0 : warp * 16 * kMTiles;
    const int warp_key0 = kDecode ? warp * kWarpKeys : 0;

#pragma unroll
    for (int m = 0; m < kMTiles; ++m) {
#pragma unroll
      for (int i = 0; i < 2; ++i) {
        row_max[m][i] = -INFINITY;
        row_sum[m][i] = 0.0f;
      }
#pragma unroll
      for (int nb = 0; nb < kOutBlocks; ++nb) {
#pragma unroll
        for (int e = 0; e < 4; ++e) acc[m][nb][e] = 0.0f;
      }
    }

    // Keys a row may see: prefill rows end at their causal diagonal; decode rows see everything.
    int row_limit[kMTiles][2];
    int tile_limit = kv_end;  // keys below this are visible to every row of the CTA
#pragma unroll
    for (int m = 0; m < kMTiles; ++m) {
#pragma unroll
      for (int i = 0; i < 2; ++i) {
        const int row = warp_row0 + m * 16 + lane / 4 + i * 8;
        row_limit[m][i] = kv_end;
        if (causal && row < valid_rows) {
          row_limit[m][i] = min(kv_end, context_len + row / p->heads_per_kv + 1);
        }
      }
    }
    if (causal) tile_limit = min(kv_end, context_len + 1);

    const int num_tiles = this->num_tiles();
    std::uint32_t q_regs[Cfg::kQInRegisters ? kDSteps : 1][4];
    for (int tile = 0; tile < num_tiles; ++tile) {
      cp_async_wait<kStages - 2>();
      __syncthreads();
#ifdef PAGEDSERVE_PREFILL_STAMPS
      if constexpr (!kDecode) {
        if (tile == 0 && threadIdx.x == 0 && blockIdx.x < kStampRows) {
          g_prefill_stamps[blockIdx.x * kStampCols + 3] = clock64();
        }
      }
#endif
      {
        const int next = tile + kStages - 1;
        if (next < num_tiles) issue_kv((stage0 + next) % kStages, kv_begin + next * kKeys, next_pages);
        cp_async_commit();
        if (next + 1 < num_tiles) lookup_pages(kv_begin + (next + 1) * kKeys, next_pages);
      }
      if constexpr (Cfg::kQInRegisters) {
        static_assert(!Cfg::kQInRegisters || kMTiles == 1, "Q in registers holds one m-tile");
        if (tile == 0) {
#pragma unroll
          for (int ks = 0; ks < kDSteps; ++ks) q_fragment(q_regs[ks], warp_row0, ks);
        }
      }
      const T* k_tile = k_stage((stage0 + tile) % kStages);
      const T* v_tile = v_stage((stage0 + tile) % kStages);
      const int key0 = kv_begin + tile * kKeys;

      float score[kMTiles][kScoreBlocks][4];
#pragma unroll
      for (int m = 0; m < kMTiles; ++m) {
#pragma unroll
        for (int nb = 0; nb < kScoreBlocks; ++nb) {
#pragma unroll
          for (int e = 0; e < 4; ++e) score[m][nb][e] = 0.0f;
        }
      }
#pragma unroll
      for (int ks = 0; ks < kDSteps; ++ks) {
        std::uint32_t a[kMTiles][4];
#pragma unroll
        for (int m = 0; m < kMTiles; ++m) {
          if constexpr (Cfg::kQInRegisters) {
#pragma unroll
            for (int e = 0; e < 4; ++e) a[m][e] = q_regs[ks][e];
          } else {
            q_fragment(a[m], warp_row0 + m * 16, ks);
          }
        }
#pragma unroll
        for (int nb2 = 0; nb2 < kScoreBlocks / 2; ++nb2) {
          std::uint32_t b[4];
          const int key = warp_key0 + nb2 * 16 + (lane % 8) + (lane / 16) * 8;
          const int col = ks * 16 + ((lane / 8) % 2) * 8;
          ldmatrix_x4(b, k_tile + key * kStride + col);
#pragma unroll
          for (int m = 0; m < kMTiles; ++m) {
            mma_16816<T>(score[m][2 * nb2], a[m], b[0], b[1]);
            mma_16816<T>(score[m][2 * nb2 + 1], a[m], b[2], b[3]);
          }
        }
      }

      // Scale into base-2 units; mask only tiles that reach past what every row may see.
      const bool needs_mask = key0 + kKeys > tile_limit;
#pragma unroll
      for (int m = 0; m < kMTiles; ++m) {
#pragma unroll
        for (int nb = 0; nb < kScoreBlocks; ++nb) {
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            float s = Cfg::kFoldScale ? score[m][nb][e] : score[m][nb][e] * p->scale_log2;
            if (needs_mask) {
              const int key = key0 + warp_key0 + nb * 8 + (lane % 4) * 2 + (e % 2);
              if (key >= row_limit[m][e / 2]) s = -INFINITY;
            }
            score[m][nb][e] = s;
          }
        }
      }

      // Online softmax: new running max, rescale what was accumulated, exponentiate.
      if constexpr (Cfg::kLazyRescale) {
        float new_max[kMTiles][2];
        bool grow = false;
#pragma unroll
        for (int m = 0; m < kMTiles; ++m) {
#pragma unroll
          for (int i = 0; i < 2; ++i) {
            float tile_max = quad_row_max(score[m], i);
            if constexpr (Cfg::kFoldScale) tile_max *= p->scale_log2;  // max commutes with a positive scale
            new_max[m][i] = tile_max > row_max[m][i] + kLazyRescaleThreshold ? tile_max : row_max[m][i];
            grow |= new_max[m][i] != row_max[m][i];
          }
        }
        // Warp-uniform: most tiles after the first leave every row's max within the threshold.
        if (__any_sync(0xffffffffu, grow)) {
#pragma unroll
          for (int m = 0; m < kMTiles; ++m) {
#pragma unroll
            for (int i = 0; i < 2; ++i) {
              // Unchanged rows keep 1 (also at -inf, where the difference would be NaN); a row
              // leaving -inf gets 0, its accumulators being 0 anyway.
              const float rescale = new_max[m][i] == row_max[m][i] ? 1.0f : exp2f(row_max[m][i] - new_max[m][i]);
              row_max[m][i] = new_max[m][i];
              row_sum[m][i] *= rescale;
#pragma unroll
              for (int nb = 0; nb < kOutBlocks; ++nb) {
                acc[m][nb][2 * i] *= rescale;
                acc[m][nb][2 * i + 1] *= rescale;
              }
            }
          }
        }
#pragma unroll
        for (int m = 0; m < kMTiles; ++m) {
#pragma unroll
          for (int i = 0; i < 2; ++i) {
            // A row that has seen only masked keys keeps max -inf; subtract 0 then so exp2 gives 0.
            const float base = row_max[m][i] == -INFINITY ? 0.0f : row_max[m][i];
#pragma unroll
            for (int nb = 0; nb < kScoreBlocks; ++nb) {
              float p0, p1;
              if constexpr (Cfg::kFoldScale) {
                p0 = exp2f(fmaf(score[m][nb][2 * i], p->scale_log2, -base));
                p1 = exp2f(fmaf(score[m][nb][2 * i + 1], p->scale_log2, -base));
              } else {
                p0 = exp2f(score[m][nb][2 * i] - base);
                p1 = exp2f(score[m][nb][2 * i + 1] - base);
              }
              score[m][nb][2 * i] = p0;
              score[m][nb][2 * i + 1] = p1;
              row_sum[m][i] += p0 + p1;
            }
          }
        }
      } else {
#pragma unroll
        for (int m = 0; m < kMTiles; ++m) {
#pragma unroll
          for (int i = 0; i < 2; ++i) {
            const float new_max = fmaxf(row_max[m][i], quad_row_max(score[m], i));
            // A row that has seen only masked keys keeps max -inf; subtract 0 then so exp2 gives 0.
            const float base = new_max == -INFINITY ? 0.0f : new_max;
            const float rescale = exp2f(row_max[m][i] - base);
            row_max[m][i] = new_max;
            row_sum[m][i] *= rescale;
#pragma unroll
            for (int nb = 0; nb < kOutBlocks; ++nb) {
              acc[m][nb][2 * i] *= rescale;
              acc[m][nb][2 * i + 1] *= rescale;
            }
#pragma unroll
            for (int nb = 0; nb < kScoreBlocks; ++nb) {
              const float p0 = exp2f(score[m][nb][2 * i] - base);
              const float p1 = exp2f(score[m][nb][2 * i + 1] - base);
              score[m][nb][2 * i] = p0;
              score[m][nb][2 * i + 1] = p1;
              row_sum[m][i] += p0 + p1;
            }
          }
        }
      }

      // acc += P · V: the score fragments of two n-blocks form one A fragment (16 keys), and
      // each V fragment serves every m-tile of the warp.
#pragma unroll
      for (int kk = 0; kk < kWarpKeys / 16; ++kk) {
        std::uint32_t a[kMTiles][4];
#pragma unroll
        for (int m = 0; m < kMTiles; ++m) {
          a[m][0] = pack2<T>(score[m][2 * kk][0], score[m][2 * kk][1]);
          a[m][1] = pack2<T>(score[m][2 * kk][2], score[m][2 * kk][3]);
          a[m][2] = pack2<T>(score[m][2 * kk + 1][0], score[m][2 * kk + 1][1]);
          a[m][3] = pack2<T>(score[m][2 * kk + 1][2], score[m][2 * kk + 1][3]);
        }
#pragma unroll
        for (int nd2 = 0; nd2 < kOutBlocks / 2; ++nd2) {
          std::uint32_t b[4];
          const int key = warp_key0 + kk * 16 + (lane % 8) + ((lane / 8) % 2) * 8;
          const int col = nd2 * 16 + (lane / 16) * 8;
          ldmatrix_x4_trans(b, v_tile + key * kStride + col);
#pragma unroll
          for (int m = 0; m < kMTiles; ++m) {
            mma_16816<T>(acc[m][2 * nd2], a[m], b[0], b[1]);
            mma_16816<T>(acc[m][2 * nd2 + 1], a[m], b[2], b[3]);
          }
        }
      }
    }
  }

  // The whole item from a clean pipeline; leaves no copy in flight and no warp reading.
  __device__ void run(float (&row_max)[kMTiles][2], float (&row_sum)[kMTiles][2], float (&acc)[kMTiles][kOutBlocks][4]) const {
    int next_pages[kLoadIters];
    prologue(0, next_pages);
    main_loop(0, next_pages, row_max, row_sum, acc);
    cp_async_wait<0>();
    __syncthreads();
  }
};

template <typename T>
__device__ __forceinline__ void store2(T* dst, float x, float y) {
  *reinterpret_cast<std::uint32_t*>(dst) = pack2<T>(x, y);
}

}  // namespace pagedserve::cuda_detail
