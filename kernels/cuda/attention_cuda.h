// Paged attention on CUDA (sm_90a; H100/H200): the same contract as the CPU kernels
// (kernels/attention.h, DESIGN.md §4) on device views, enqueued on a caller's stream.
//
// Supported: bf16 or f16 q/k/v/out; head_dim 64, 80, 96, 128 or 256; page sizes that are
// powers of two; heads_per_kv up to 16 (decode) or 128 (prefill). Unsupported shapes throw
// SetupError before anything is enqueued. Neither call synchronises with the host or allocates,
// and launch sizes depend only on tensor shapes (batch capacity, num_tokens), never on
// seq_lens: a step can be captured once in a CUDA graph and replayed with any live rows.
// Called from the engine thread that owns the stream; the views must stay valid until the
// stream has run the work.
#pragma once

#include <cstddef>

#include "kernels/attention.h"

struct CUstream_st;

namespace pagedserve {

using CudaStream = CUstream_st*;  // the same type as cudaStream_t, without the CUDA headers

// Scratch bytes decode_attention_cuda needs for these shapes (split-KV partials); depends on
// batch capacity, heads and head_dim, and on the current device, never on seq_lens.
std::size_t decode_attention_cuda_workspace_bytes(const PagedAttentionArgs& args);

// Every row has q_len 1 (query_start_len[s] is its token). Inactive rows (seq_len 0) cost no
// K/V traffic; long rows are split along K/V when the live rows cannot fill the GPU, the split
// chosen on the device from seq_lens. `workspace` is caller-owned device memory of at least
// decode_attention_cuda_workspace_bytes(args), not shared with concurrent launches.
void decode_attention_cuda(const PagedAttentionArgs& args, void* workspace, std::size_t workspace_bytes,
                           CudaStream stream);

// Ragged rows with context (chunked prefill, mixed batches); any q_len including 1.
void prefill_attention_cuda(const PagedAttentionArgs& args, CudaStream stream);

}  // namespace pagedserve
