// Definitions of the launchers declared in attention_launch.cuh; included only by the
// attention_instances_*.cu files, which instantiate them.
#pragma once

#include "kernels/cuda/attention_launch.cuh"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/paged_attention_kernel.cuh"

namespace pagedserve::cuda_detail {

template <typename T, int D>
int decode_attention_blocks_per_sm(int capacity) {
  using Cfg = AttentionConfig<D, true>;
  const int smem = Cfg::smem_bytes(capacity);
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
  combine_decode_kernel<T><<<2 * sms, kCombineThreads, 0, stream>>>(params, head_dim);
  check_launch("combine_decode_kernel");
}

template <typename T, int D>
void launch_prefill_attention(const AttentionParams& params, int grid_x, cudaStream_t stream) {
  using Cfg = AttentionConfig<D, false>;
  const int smem = Cfg::smem_bytes(params.capacity);
  check_cuda(cudaFuncSetAttribute(prefill_attention_kernel<T, D>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem),
             "cudaFuncSetAttribute(prefill_attention_kernel)");
  prefill_attention_kernel<T, D><<<dim3(grid_x, params.num_kv_heads), Cfg::kThreads, smem, stream>>>(params);
  check_launch("prefill_attention_kernel");
}

}  // namespace pagedserve::cuda_detail
