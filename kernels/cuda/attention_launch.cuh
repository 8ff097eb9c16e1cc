// Launchers of the paged-attention kernel templates; explicitly instantiated for each dtype and
// head_dim in attention_instances_*.cu (one .cu per dtype and kernel, so nvcc runs in parallel)
// and called by attention_cuda.cu. Host code; any thread.
#pragma once

#include <cuda_runtime.h>

#include "kernels/cuda/attention_params.h"

namespace pagedserve::cuda_detail {

// Resident decode CTAs per SM for this capacity (shared memory bound), for the persistent grid.
template <typename T, int D>
int decode_attention_blocks_per_sm(int capacity);

template <typename T, int D>
void launch_decode_attention(const AttentionParams& params, int grid, cudaStream_t stream);

template <typename T>
void launch_combine_decode(const AttentionParams& params, int head_dim, cudaStream_t stream);

// The grid is sized from num_tokens and the batch capacity alone (graph-safe).
template <typename T, int D>
void launch_prefill_attention(const AttentionParams& params, int num_tokens, cudaStream_t stream);

}  // namespace pagedserve::cuda_detail
