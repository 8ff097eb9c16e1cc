// Definitions of the launchers declared in attention_launch.cuh; included only by the
// attention_instances_*.cu files, which instantiate them.
#pragma once

#include <algorithm>
#include <string>

#include "kernels/cuda/attention_launch.cuh"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/combine_decode_kernel.cuh"
#include "kernels/cuda/decode_attention_kernel.cuh"
#include "kernels/cuda/grid_dependency.cuh"
#include "kernels/cuda/prefill_attention_kernel.cuh"
#include "kernels/cuda/prefill_attention_wgmma_kernel.cuh"

namespace pagedserve::cuda_detail {

// The per-row work prefix lives in shared memory beside the tiles, so very large batch
// capacities can exceed the block limit: say so instead of failing the launch.
inline void check_smem_fits(int smem, int capacity, int head_dim, const char* kernel) {
  int device = 0;
  int limit = 0;
  check_cuda(cudaGetDevice(&device), "cudaGetDevice");
  check_cuda(cudaDeviceGetAttribute(&limit, cudaDevAttrMaxSharedMemoryPerBlockOptin, device), "cudaDeviceGetAttribute");
  if (smem > limit) {
    throw SetupError(kernel, "batch capacity " + std::to_string(capacity) + " at head_dim " + std::to_string(head_dim) +
                                 " needs " + std::to_string(smem) + " bytes of shared memory per block; the device allows " +
                                 std::to_string(limit));
  }
}

template <typename T, int D>
int decode_attention_blocks_per_sm(int capacity) {
  using Cfg = AttentionConfig<D, true>;
  const int smem = Cfg::smem_bytes(capacity);
  check_smem_fits(smem, capacity, D, "cuda decode attention");
  check_cuda(cudaFuncSetAttribute(decode_attention_kernel<T, D>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem),
             "cudaFuncSetAttribute(decode_attention_kernel)");
  int blocks = 0;
  check_cuda(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, decode_attention_kernel<T, D>, Cfg::kThreads, smem),
             "cudaOccupancyMaxActiveBlocksPerMultiprocessor(decode_attention_kernel)");
  if (blocks < 1) throw SetupError("cuda decode attention", "kernel does not fit on one SM");
  return blocks;
}

template <typename T, int D>
void launch_decode_attention(const AttentionParams& params, int grid, cudaStream_t stream) {
  using Cfg = AttentionConfig<D, true>;
  const int smem = Cfg::smem_bytes(params.capacity);
  check_cuda(cudaFuncSetAttribute(decode_attention_kernel<T, D>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem),
             "cudaFuncSetAttribute(decode_attention_kernel)");
  decode_attention_kernel<T, D><<<grid, Cfg::kThreads, smem, stream>>>(params);
  check_launch("decode_attention_kernel");
}

template <typename T>
void launch_combine_decode(const AttentionParams& params, int head_dim, cudaStream_t stream) {
  int device = 0;
  int sms = 0;
  check_cuda(cudaGetDevice(&device), "cudaGetDevice");
  check_cuda(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device), "cudaDeviceGetAttribute");
  // Programmatic dependent launch: the merge grid is launched while the decode grid still runs
  // and waits on the device (griddepcontrol.wait) for it to finish, instead of starting after
  // it; with no split rows it then only reads split_count. Captured into graphs like any launch.
  launch_dependent(combine_decode_kernel<T>, dim3(static_cast<unsigned>(2 * sms)), dim3(kCombineThreads), stream,
                   PAGEDSERVE_DECODE_PDL, "combine_decode_kernel", params, head_dim);
}

#ifndef PAGEDSERVE_PREFILL_WGMMA  // head_dim 64 and 128 on wgmma (0: mma.sync, for A/B benchmarks)
#define PAGEDSERVE_PREFILL_WGMMA 1
#endif

// Sets the dynamic shared-memory limit and launches `kernel` on a grid sized from num_tokens and
// the batch capacity alone (graph-safe): an upper bound on Q tiles of `rows` packed rows, since
// every live sequence adds at most one partial tile; kv head fastest (see the kernels).
template <typename Kernel>
void launch_prefill_grid(Kernel kernel, int rows, int threads, int smem, const AttentionParams& params, int num_tokens,
                         int head_dim, cudaStream_t stream) {
  const int tokens_per_tile = rows / params.heads_per_kv;
  const long long tiles = (static_cast<long long>(num_tokens) + tokens_per_tile - 1) / tokens_per_tile +
                          std::min(params.capacity, num_tokens);
  const long long grid = tiles * params.num_kv_heads;
  if (grid >= (1LL << 31)) throw SetupError("cuda prefill attention", "too many query tokens");
  check_smem_fits(smem, params.capacity, head_dim, "cuda prefill attention");
  check_cuda(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem),
             "cudaFuncSetAttribute(prefill attention)");
  kernel<<<static_cast<unsigned>(grid), threads, smem, stream>>>(params);
  check_launch("prefill attention kernel");
}

template <typename T, int D>
void launch_prefill_attention(const AttentionParams& params, int num_tokens, cudaStream_t stream) {
  if constexpr (PAGEDSERVE_PREFILL_WGMMA && (D == 64 || D == 128)) {
    using Cfg = WgmmaPrefillConfig<D>;
    launch_prefill_grid(prefill_attention_wgmma_kernel<T, D>, Cfg::kRows, Cfg::kThreads, Cfg::smem_bytes(params.capacity),
                        params, num_tokens, D, stream);
  } else {
    using Cfg = AttentionConfig<D, false>;
    launch_prefill_grid(prefill_attention_kernel<T, D>, Cfg::kRows, Cfg::kThreads, Cfg::smem_bytes(params.capacity),
                        params, num_tokens, D, stream);
  }
}

}  // namespace pagedserve::cuda_detail
