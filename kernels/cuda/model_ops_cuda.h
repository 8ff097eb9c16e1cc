// The non-attention operations of the Llama-family forward on CUDA (sm_90a), enqueued on a
// caller's stream: embedding gather, residual add fused with RMSNorm, the QKV epilogue (bias,
// per-head q/k RMSNorm, RoPE, K/V cache write through slot_mapping), SiLU x up, row gather.
//
// Activations that feed a GEMM or attention (normed x, q, k, v, the MLP) are `act` = bf16 or f16,
// the KV cache's dtype; the residual stream, the sublayer outputs added to it (delta), the QKV
// projection output, norm weights, biases and RoPE frequencies are f32 (GEMMs write f32 there, so
// no extra bf16 rounding); every reduction is in f32.
// All pointers are device memory; none of these calls synchronises with the host or allocates,
// and launch sizes depend only on the shapes passed in (a step can be captured in a CUDA graph).
// Called from the thread that owns the stream. Every launch is checked (SetupError on failure).
#pragma once

#include <cstdint>

#include "core/dtype.h"

struct CUstream_st;

namespace pagedserve {

using CudaStream = CUstream_st*;  // the same type as cudaStream_t, without the CUDA headers

// residual[t, :] = table[token_ids[t], :] (converted to f32). Ids are trusted (checked on the
// host before the step).
void embedding_gather_cuda(const void* table,              // [vocab, hidden] table_dtype
                           DType table_dtype,              // bf16 | f16 | f32
                           const std::int32_t* token_ids,  // [num_tokens]
                           int num_tokens, int hidden,
                           float* residual,  // [num_tokens, hidden] f32
                           CudaStream stream);

// For every row t: if delta != nullptr, residual[t] += delta[t] (in f32, written back); then
// out[t] = residual[t] / rms(residual[t]) * weight, rms = sqrt(mean(residual[t]^2) + eps).
void add_rms_norm_cuda(float* residual,      // [num_tokens, hidden] f32, updated in place
                       const float* delta,   // [num_tokens, hidden] f32, or nullptr
                       const float* weight,  // [hidden] f32
                       void* out,            // [num_tokens, hidden] act
                       DType act, int num_tokens, int hidden, float eps, CudaStream stream);

// What qkv_epilogue_cuda needs besides the buffers.
struct QkvEpilogueShape {
  int num_tokens = 0;
  int num_q_heads = 0;
  int num_kv_heads = 0;
  int head_dim = 0;   // even, <= 256
  int page_size = 0;  // the cache's tokens per page
  float eps = 1e-6f;  // q/k RMSNorm epsilon
};

// qkv holds each token's q, k and v projections side by side: [num_tokens, (qh + 2 kvh) * head_dim]
// (q heads first, then k heads, then v heads). Per token t and head:
//   1. + bias (q_bias/k_bias/v_bias laid out the same way, f32) when bias != nullptr;
//   2. q and k heads only: x / rms(x) * q_norm (or k_norm) over head_dim when q_norm != nullptr;
//   3. q and k heads only: RoPE at positions[t], Hugging Face's rotate_half convention (element i
//      pairs with i + head_dim/2): angle = positions[t] * inv_freq[i], computed in f32;
//   4. q head -> q_out[t, head, :]; k head -> k_cache, v head -> v_cache at slot slot_mapping[t]
//      (page slot / page_size, offset slot % page_size); slots < 0 are skipped.
void qkv_epilogue_cuda(const float* qkv,                  // [num_tokens, (qh + 2 kvh) * head_dim] f32
                       const float* bias,                 // [(qh + 2 kvh) * head_dim] f32, or nullptr
                       const float* q_norm,               // [head_dim] f32, or nullptr (no q/k norm)
                       const float* k_norm,               // [head_dim] f32, nullptr iff q_norm is
                       const float* inv_freq,             // [head_dim / 2] f32
                       const std::int32_t* positions,     // [num_tokens]
                       const std::int32_t* slot_mapping,  // [num_tokens]
                       void* q_out,                       // [num_tokens, qh, head_dim] act
                       void* k_cache,                     // [num_pages, page_size, kvh, head_dim] act
                       void* v_cache,                     // [num_pages, page_size, kvh, head_dim] act
                       DType act, const QkvEpilogueShape& shape, CudaStream stream);

// out[t, i] = silu(gate_up[t, i]) * gate_up[t, intermediate + i], silu in f32.
void silu_mul_cuda(const void* gate_up,  // [num_tokens, 2 * intermediate] act (gate | up)
                   void* out,            // [num_tokens, intermediate] act
                   DType act, int num_tokens, int intermediate, CudaStream stream);

// out[s, :] = in[rows[s], :] for the rows that get logits.
void gather_rows_cuda(const void* in,            // [num_tokens, width] act
                      const std::int32_t* rows,  // [num_rows]
                      void* out,                 // [num_rows, width] act
                      DType act, int num_rows, int width, CudaStream stream);

}  // namespace pagedserve
