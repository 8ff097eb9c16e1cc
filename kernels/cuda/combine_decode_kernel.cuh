// The merge step of split-KV decode (flash-decoding): partial outputs of a row's chunks are
// combined with log-sum-exp weights.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/cuda/attention_tile.cuh"
#include "kernels/cuda/grid_dependency.cuh"

namespace pagedserve::cuda_detail {

// Merges the chunks of split decode rows (log-sum-exp weights). A fixed grid strides over
// (split row, kv head, q head) items read from the compact list the decode kernel wrote, so
// inactive and unsplit rows cost nothing. Within an item the threads split the chunks into
// groups (more loads in flight for long rows) and reduce the groups through shared memory.
constexpr int kCombineThreads = 256;

template <typename T>
__global__ void __launch_bounds__(kCombineThreads) combine_decode_kernel(const AttentionParams p, int head_dim) {
  __shared__ float2 partial[kCombineThreads];
  __shared__ float partial_sum[kCombineThreads];
  __shared__ float chunk_max[kCombineThreads / 32];
  // The o-projection after this grid may start loading its weights now.
  allow_dependent_launch();
  // Launched as a programmatic dependent of decode_attention_kernel: wait until that grid has
  // finished and its writes are visible (a no-op when launched without the attribute).
  wait_for_grid_dependencies();
  const int pairs = head_dim / 2;
  const int groups = kCombineThreads / pairs;
  const int pair = threadIdx.x % pairs;
  const int chunk_group = threadIdx.x / pairs;  // == groups for the spare threads
  const int group = p.heads_per_kv;
  const int items = *p.split_count * p.num_kv_heads * group;
  T* out = static_cast<T*>(p.out);
  for (int item = blockIdx.x; item < items; item += gridDim.x) {
    const int seq = p.split_rows[item / (p.num_kv_heads * group)];
    const int kv_head = (item / group) % p.num_kv_heads;
    const int row = item % group;
    const int chunks = p.row_chunks[seq];
    const int base = p.row_chunk_base[seq];
    auto slot_of = [&](int c) {
      return (static_cast<long long>(base + c) * p.num_kv_heads + kv_head) * group + row;
    };
    float local_max = -INFINITY;
    for (int c = threadIdx.x; c < chunks; c += kCombineThreads) local_max = fmaxf(local_max, p.partial_max_sum[slot_of(c) * 2]);
#pragma unroll
    for (int offset = 16; offset > 0; offset >>= 1) local_max = fmaxf(local_max, __shfl_xor_sync(0xffffffffu, local_max, offset));
    if (threadIdx.x % 32 == 0) chunk_max[threadIdx.x / 32] = local_max;
    __syncthreads();
    float max_all = -INFINITY;
#pragma unroll
    for (int w = 0; w < kCombineThreads / 32; ++w) max_all = fmaxf(max_all, chunk_max[w]);

    float sum = 0.0f;
    float2 value = make_float2(0.0f, 0.0f);
    if (chunk_group < groups) {
#pragma unroll 4
      for (int c = chunk_group; c < chunks; c += groups) {
        const long long slot = slot_of(c);
        const float weight = exp2f(p.partial_max_sum[slot * 2] - max_all);
        sum += weight * p.partial_max_sum[slot * 2 + 1];
        const float2 part = *reinterpret_cast<const float2*>(p.partial_out + slot * head_dim + pair * 2);
        value.x += weight * part.x;
        value.y += weight * part.y;
      }
    }
    partial[threadIdx.x] = value;
    partial_sum[threadIdx.x] = sum;
    __syncthreads();
    if (chunk_group == 0) {
      for (int g = 1; g < groups; ++g) {
        value.x += partial[g * pairs + pair].x;
        value.y += partial[g * pairs + pair].y;
        sum += partial_sum[g * pairs + pair];
      }
      const float inv = 1.0f / sum;
      const long long out_row = (static_cast<long long>(p.query_start_len[seq]) * p.num_kv_heads + kv_head) * group + row;
      store2(out + out_row * head_dim + pair * 2, value.x * inv, value.y * inv);
    }
    __syncthreads();  // shared scratch is reused by the next item
  }
}

}  // namespace pagedserve::cuda_detail
