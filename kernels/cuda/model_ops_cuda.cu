// The model's non-attention kernels (model_ops_cuda.h). All are memory-bound: row kernels put one
// block on a row and move 8- or 16-byte vectors when the row length and the pointers allow it;
// otherwise the same threads walk the same chunks element by element, so a launch's shape depends
// only on the shape arguments, never on alignment. 16-bit activations are handled as raw bits and
// converted with the CUDA intrinsics (round to nearest even).
#include "kernels/cuda/model_ops_cuda.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <type_traits>

#include "core/error.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/grid_dependency.cuh"

namespace pagedserve {

namespace {

using cuda_detail::allow_dependent_launch;
using cuda_detail::wait_for_grid_dependencies;
using cuda_detail::check_launch;

constexpr int kWarp = 32;
constexpr int kMaxThreads = 256;  // per row block
constexpr int kMaxHeadDim = 256;
constexpr int kHeadsPerBlock = 8;  // qkv epilogue: one warp per (token, head)
constexpr int kPairsPerLane = kMaxHeadDim / 2 / kWarp;

// Element types: Storage is what sits in memory, to_float widens it exactly.
struct Bf16 {
  using Storage = unsigned short;
  static __device__ __forceinline__ float to_float(unsigned short bits) {
    return __bfloat162float(__ushort_as_bfloat16(bits));
  }
  static __device__ __forceinline__ unsigned short from_float(float value) {
    return __bfloat16_as_ushort(__float2bfloat16_rn(value));
  }
};

struct F16 {
  using Storage = unsigned short;
  static __device__ __forceinline__ float to_float(unsigned short bits) {
    return __half2float(__ushort_as_half(bits));
  }
  static __device__ __forceinline__ unsigned short from_float(float value) {
    return __half_as_ushort(__float2half_rn(value));
  }
};

struct F32 {
  using Storage = float;
  static __device__ __forceinline__ float to_float(float value) { return value; }
};

// Four consecutive elements as f32; p must be aligned to 4 elements.
template <typename Elem>
__device__ __forceinline__ float4 load4(const typename Elem::Storage* p) {
  if constexpr (std::is_same_v<typename Elem::Storage, float>) {
    return *reinterpret_cast<const float4*>(p);
  } else {
    const uint2 raw = *reinterpret_cast<const uint2*>(p);  // little-endian: element 0 in the low half
    return make_float4(Elem::to_float(static_cast<unsigned short>(raw.x & 0xffffu)),
                       Elem::to_float(static_cast<unsigned short>(raw.x >> 16)),
                       Elem::to_float(static_cast<unsigned short>(raw.y & 0xffffu)),
                       Elem::to_float(static_cast<unsigned short>(raw.y >> 16)));
  }
}

template <typename Act>
__device__ __forceinline__ unsigned pack2(float lo, float hi) {
  return static_cast<unsigned>(Act::from_float(lo)) | (static_cast<unsigned>(Act::from_float(hi)) << 16);
}

// Four f32 values into four 16-bit elements at p (aligned to 4 elements).
template <typename Act>
__device__ __forceinline__ void store4(unsigned short* p, float a, float b, float c, float d) {
  *reinterpret_cast<uint2*>(p) = make_uint2(pack2<Act>(a, b), pack2<Act>(c, d));
}

__device__ __forceinline__ float warp_sum(float value) {
#pragma unroll
  for (int offset = kWarp / 2; offset > 0; offset /= 2) value += __shfl_xor_sync(0xffffffffu, value, offset);
  return value;
}

// Sum over the block (blockDim.x a multiple of 32, <= 1024); every thread gets the same total.
__device__ __forceinline__ float block_sum(float value, float* warp_sums /* [32] shared */) {
  const int lane = static_cast<int>(threadIdx.x) % kWarp;
  const int warp = static_cast<int>(threadIdx.x) / kWarp;
  value = warp_sum(value);
  if (lane == 0) warp_sums[warp] = value;
  __syncthreads();
  const int num_warps = static_cast<int>(blockDim.x) / kWarp;
  return warp_sum(lane < num_warps ? warp_sums[lane] : 0.0f);
}

// ---- embedding gather: grid [num_tokens], one block per token, 4 elements per thread step ----

template <typename Table, bool kVector>
__global__ void embedding_gather_kernel(const typename Table::Storage* table,  // [vocab, hidden]
                                        const std::int32_t* token_ids,         // [num_tokens]
                                        int hidden,
                                        float* residual) {  // [num_tokens, hidden]
  const typename Table::Storage* src = table + static_cast<std::int64_t>(token_ids[blockIdx.x]) * hidden;
  float* dst = residual + static_cast<std::int64_t>(blockIdx.x) * hidden;
  const int chunks = (hidden + 3) / 4;
  for (int c = static_cast<int>(threadIdx.x); c < chunks; c += static_cast<int>(blockDim.x)) {
    const int i = 4 * c;
    if constexpr (kVector) {
      *reinterpret_cast<float4*>(dst + i) = load4<Table>(src + i);
    } else {
      const int end = min(i + 4, hidden);
      for (int j = i; j < end; ++j) dst[j] = Table::to_float(src[j]);
    }
  }
}

// ---- residual add + RMSNorm: grid [num_tokens], one block per row ----

template <typename Act, bool kVector>
__global__ void add_rms_norm_kernel(float* residual,      // [num_tokens, hidden]
                                    const float* delta,   // [num_tokens, hidden] or nullptr
                                    const float* weight,  // [hidden]
                                    unsigned short* out,  // [num_tokens, hidden]
                                    int hidden, float eps) {
  allow_dependent_launch();  // the projection after us may start streaming its weights
  wait_for_grid_dependencies();  // launched as a programmatic dependent (PAGEDSERVE_CUDA_PDL=2)
  __shared__ float warp_sums[kWarp];
  const std::int64_t row = static_cast<std::int64_t>(blockIdx.x) * hidden;
  float* res = residual + row;
  const float* add = delta == nullptr ? nullptr : delta + row;
  unsigned short* dst = out + row;
  const int chunks = (hidden + 3) / 4;
  float sum_squares = 0.0f;
  for (int c = static_cast<int>(threadIdx.x); c < chunks; c += static_cast<int>(blockDim.x)) {
    const int i = 4 * c;
    if constexpr (kVector) {
      float4 r = *reinterpret_cast<const float4*>(res + i);
      if (add != nullptr) {
        const float4 d = *reinterpret_cast<const float4*>(add + i);
        r.x += d.x;
        r.y += d.y;
        r.z += d.z;
        r.w += d.w;
        *reinterpret_cast<float4*>(res + i) = r;
      }
      sum_squares += r.x * r.x + r.y * r.y + r.z * r.z + r.w * r.w;
    } else {
      const int end = min(i + 4, hidden);
      for (int j = i; j < end; ++j) {
        float r = res[j];
        if (add != nullptr) {
          r += add[j];
          res[j] = r;
        }
        sum_squares += r * r;
      }
    }
  }
  const float scale = rsqrtf(block_sum(sum_squares, warp_sums) / static_cast<float>(hidden) + eps);
  // Second pass over the same chunks by the same threads: each reads back its own writes.
  for (int c = static_cast<int>(threadIdx.x); c < chunks; c += static_cast<int>(blockDim.x)) {
    const int i = 4 * c;
    if constexpr (kVector) {
      const float4 r = *reinterpret_cast<const float4*>(res + i);
      const float4 w = *reinterpret_cast<const float4*>(weight + i);
      store4<Act>(dst + i, r.x * scale * w.x, r.y * scale * w.y, r.z * scale * w.z, r.w * scale * w.w);
    } else {
      const int end = min(i + 4, hidden);
      for (int j = i; j < end; ++j) dst[j] = Act::from_float(res[j] * scale * weight[j]);
    }
  }
}

// ---- QKV epilogue: grid [num_tokens, ceil(heads / 8)], 8 warps, one warp per (token, head) ----

struct QkvParams {
  const float* qkv;                  // [num_tokens, (qh + 2 kvh) * head_dim]
  const float* bias;                 // [(qh + 2 kvh) * head_dim] or nullptr
  const float* q_norm;               // [head_dim] or nullptr
  const float* k_norm;               // [head_dim] or nullptr
  const float* inv_freq;             // [head_dim / 2]
  const std::int32_t* positions;     // [num_tokens]
  const std::int32_t* slot_mapping;  // [num_tokens]
  unsigned short* q_out;             // [num_tokens, qh, head_dim]
  unsigned short* k_cache;           // [num_slots, kvh, head_dim]
  unsigned short* v_cache;           // [num_slots, kvh, head_dim]
  int num_q_heads;
  int num_kv_heads;
  int head_dim;
  float eps;
};

// cos/sin of the f32 angle float(position) * inv_freq (as HF computes it). The library is built
// with --use_fast_math, whose sine/cosine are accurate only near zero, and angles reach ~1e5 rad at
// long positions: reduce the exact f32 angle into [-pi, pi] in f64 first (error < 1e-9 there),
// then the fast f32 sincos is within ~4e-7 absolute.
__device__ __forceinline__ void rope_cos_sin(float position, float inv_freq, float* cos_out, float* sin_out) {
  constexpr double kTwoPi = 6.283185307179586476925;
  const double angle = static_cast<double>(__fmul_rn(position, inv_freq));
  const double reduced = angle - kTwoPi * rint(angle * (1.0 / kTwoPi));
  __sincosf(static_cast<float>(reduced), sin_out, cos_out);
}

template <typename Act>
__global__ void __launch_bounds__(kHeadsPerBlock* kWarp) qkv_epilogue_kernel(const QkvParams p) {
  __shared__ float cos_table[kMaxHeadDim / 2];
  __shared__ float sin_table[kMaxHeadDim / 2];
  const int t = static_cast<int>(blockIdx.x);
  const int half = p.head_dim / 2;
  const float position = static_cast<float>(p.positions[t]);
  for (int i = static_cast<int>(threadIdx.x); i < half; i += static_cast<int>(blockDim.x)) {
    rope_cos_sin(position, p.inv_freq[i], &cos_table[i], &sin_table[i]);
  }
  __syncthreads();
  // Launched as a programmatic dependent (PAGEDSERVE_CUDA_PDL=2), the kernel may start while the
  // qkv projection still runs: the rope table above reads only the step's metadata (copied before
  // the step's first kernel); qkv, the cache and q_out only after this wait.
  wait_for_grid_dependencies();

  // Everything below is uniform across the warp (head, slot), so a warp exits as a whole.
  const int lane = static_cast<int>(threadIdx.x) % kWarp;
  const int head = static_cast<int>(blockIdx.y) * kHeadsPerBlock + static_cast<int>(threadIdx.x) / kWarp;
  const int total_heads = p.num_q_heads + 2 * p.num_kv_heads;
  if (head >= total_heads) return;
  const bool is_q = head < p.num_q_heads;
  const bool is_v = head >= p.num_q_heads + p.num_kv_heads;
  unsigned short* dst = nullptr;
  if (is_q) {
    dst = p.q_out + (static_cast<std::int64_t>(t) * p.num_q_heads + head) * p.head_dim;
  } else {
    const int slot = p.slot_mapping[t];
    if (slot < 0) return;
    const int kv_head = head - p.num_q_heads - (is_v ? p.num_kv_heads : 0);
    // [num_pages, page_size, kvh, head_dim] with page = slot / page_size, offset = slot % page_size
    // is the same address as [num_pages * page_size, kvh, head_dim] at row `slot`.
    dst = (is_v ? p.v_cache : p.k_cache) +
          (static_cast<std::int64_t>(slot) * p.num_kv_heads + kv_head) * p.head_dim;
  }
  const float* src = p.qkv + (static_cast<std::int64_t>(t) * total_heads + head) * p.head_dim;
  const float* bias = p.bias == nullptr ? nullptr : p.bias + static_cast<std::int64_t>(head) * p.head_dim;

  // Lane holds pairs i = lane + 32 j: lo = x[i], hi = x[i + half] (the rotate_half partners).
  float lo[kPairsPerLane];
  float hi[kPairsPerLane];
#pragma unroll
  for (int j = 0; j < kPairsPerLane; ++j) {
    const int i = lane + j * kWarp;
    lo[j] = 0.0f;
    hi[j] = 0.0f;
    if (i < half) {
      lo[j] = src[i];
      hi[j] = src[i + half];
      if (bias != nullptr) {
        lo[j] += bias[i];
        hi[j] += bias[i + half];
      }
    }
  }
  if (!is_v) {
    if (p.q_norm != nullptr) {
      float sum_squares = 0.0f;
#pragma unroll
      for (int j = 0; j < kPairsPerLane; ++j) sum_squares += lo[j] * lo[j] + hi[j] * hi[j];
      const float scale = rsqrtf(warp_sum(sum_squares) / static_cast<float>(p.head_dim) + p.eps);
      const float* w = is_q ? p.q_norm : p.k_norm;
#pragma unroll
      for (int j = 0; j < kPairsPerLane; ++j) {
        const int i = lane + j * kWarp;
        if (i < half) {
          lo[j] = lo[j] * scale * w[i];
          hi[j] = hi[j] * scale * w[i + half];
        }
      }
    }
#pragma unroll
    for (int j = 0; j < kPairsPerLane; ++j) {
      const int i = lane + j * kWarp;
      if (i < half) {
        const float c = cos_table[i];
        const float s = sin_table[i];
        const float a = lo[j];
        const float b = hi[j];
        lo[j] = a * c - b * s;
        hi[j] = b * c + a * s;
      }
    }
  }
#pragma unroll
  for (int j = 0; j < kPairsPerLane; ++j) {
    const int i = lane + j * kWarp;
    if (i < half) {
      dst[i] = Act::from_float(lo[j]);
      dst[i + half] = Act::from_float(hi[j]);
    }
  }
}

// ---- SiLU x up: grid [num_tokens, ceil(chunks / threads)], 8 elements per thread ----

__device__ __forceinline__ float silu_times(float gate, float up) {
  return gate / (1.0f + __expf(-gate)) * up;
}

template <typename Act>
__device__ __forceinline__ unsigned silu_mul_pair(unsigned gate, unsigned up) {
  return pack2<Act>(silu_times(Act::to_float(static_cast<unsigned short>(gate & 0xffffu)),
                               Act::to_float(static_cast<unsigned short>(up & 0xffffu))),
                    silu_times(Act::to_float(static_cast<unsigned short>(gate >> 16)),
                               Act::to_float(static_cast<unsigned short>(up >> 16))));
}

template <typename Act, bool kVector>
__global__ void silu_mul_kernel(const unsigned short* gate_up,  // [num_tokens, 2 * intermediate]
                                unsigned short* out,            // [num_tokens, intermediate]
                                int intermediate) {
  allow_dependent_launch();  // the down projection may start streaming its weights
  wait_for_grid_dependencies();
  const int i = 8 * static_cast<int>(blockIdx.y * blockDim.x + threadIdx.x);
  if (i >= intermediate) return;
  const unsigned short* gate = gate_up + static_cast<std::int64_t>(blockIdx.x) * 2 * intermediate;
  const unsigned short* up = gate + intermediate;
  unsigned short* dst = out + static_cast<std::int64_t>(blockIdx.x) * intermediate;
  if constexpr (kVector) {
    const uint4 g = *reinterpret_cast<const uint4*>(gate + i);
    const uint4 u = *reinterpret_cast<const uint4*>(up + i);
    *reinterpret_cast<uint4*>(dst + i) =
        make_uint4(silu_mul_pair<Act>(g.x, u.x), silu_mul_pair<Act>(g.y, u.y), silu_mul_pair<Act>(g.z, u.z),
                   silu_mul_pair<Act>(g.w, u.w));
  } else {
    const int end = min(i + 8, intermediate);
    for (int j = i; j < end; ++j)
      dst[j] = Act::from_float(silu_times(Act::to_float(gate[j]), Act::to_float(up[j])));
  }
}

// ---- row gather: grid [num_rows], one block per row, 16 bytes (8 elements) per thread step ----

template <bool kVector>
__global__ void gather_rows_kernel(const unsigned short* in,  // [num_tokens, width]
                                   const std::int32_t* rows,  // [num_rows]
                                   unsigned short* out,       // [num_rows, width]
                                   int width) {
  allow_dependent_launch();  // lm_head may start streaming its weights
  wait_for_grid_dependencies();
  const unsigned short* src = in + static_cast<std::int64_t>(rows[blockIdx.x]) * width;
  unsigned short* dst = out + static_cast<std::int64_t>(blockIdx.x) * width;
  const int chunks = (width + 7) / 8;
  for (int c = static_cast<int>(threadIdx.x); c < chunks; c += static_cast<int>(blockDim.x)) {
    const int i = 8 * c;
    if constexpr (kVector) {
      *reinterpret_cast<uint4*>(dst + i) = *reinterpret_cast<const uint4*>(src + i);
    } else {
      const int end = min(i + 8, width);
      for (int j = i; j < end; ++j) dst[j] = src[j];
    }
  }
}

// ---- host side ----

void require(bool condition, const char* op, const std::string& reason) {
  if (!condition) throw SetupError(std::string("cuda ") + op, reason);
}

bool aligned(const void* p, std::size_t bytes) { return reinterpret_cast<std::uintptr_t>(p) % bytes == 0; }

// A multiple of 32 covering `chunks` (>= 1) in one pass where possible, at most kMaxThreads.
int threads_for(int chunks) { return std::min(kMaxThreads, (chunks + kWarp - 1) / kWarp * kWarp); }

void require_act(DType act, const char* op) {
  require(act == DType::bf16 || act == DType::f16, op,
          "activation dtype must be bf16 or f16, got " + std::string(dtype_name(act)));
}

// Launches one of the elementwise kernels between the projections: as a programmatic dependent of
// the grid before it on `stream` when PAGEDSERVE_CUDA_PDL=2 (the kernel waits at its start), else
// as an ordinary stream successor.
template <typename... Params, typename... Args>
void launch_between_projections(void (*kernel)(Params...), dim3 grid, int threads, cudaStream_t stream,
                                const char* name, Args... args) {
  cuda_detail::launch_dependent(kernel, grid, dim3(static_cast<unsigned>(threads)), stream,
                                cuda_detail::programmatic_launch_level() >= 2, name, args...);
}

template <typename Table>
void launch_embedding_gather(const void* table, const std::int32_t* token_ids, int num_tokens, int hidden,
                             float* residual, cudaStream_t stream) {
  using Storage = typename Table::Storage;
  const bool vector = hidden % 4 == 0 && aligned(table, 4 * sizeof(Storage)) && aligned(residual, 16);
  const int threads = threads_for((hidden + 3) / 4);
  const auto* typed = static_cast<const Storage*>(table);
  if (vector) {
    embedding_gather_kernel<Table, true>
        <<<num_tokens, threads, 0, stream>>>(typed, token_ids, hidden, residual);
  } else {
    embedding_gather_kernel<Table, false>
        <<<num_tokens, threads, 0, stream>>>(typed, token_ids, hidden, residual);
  }
  check_launch("embedding_gather_kernel");
}

template <typename Act>
void launch_add_rms_norm(float* residual, const float* delta, const float* weight, void* out, int num_tokens,
                         int hidden, float eps, cudaStream_t stream) {
  const bool vector = hidden % 4 == 0 && aligned(residual, 16) && aligned(weight, 16) && aligned(delta, 16) &&
                      aligned(out, 8);
  const int threads = threads_for((hidden + 3) / 4);
  const float* typed_delta = delta;
  auto* typed_out = static_cast<unsigned short*>(out);
  launch_between_projections(vector ? add_rms_norm_kernel<Act, true> : add_rms_norm_kernel<Act, false>,
                             dim3(static_cast<unsigned>(num_tokens)), threads, stream, "add_rms_norm_kernel",
                             residual, typed_delta, weight, typed_out, hidden, eps);
}

template <typename Act>
void launch_silu_mul(const void* gate_up, void* out, int num_tokens, int intermediate, cudaStream_t stream) {
  const bool vector = intermediate % 8 == 0 && aligned(gate_up, 16) && aligned(out, 16);
  const int chunks = (intermediate + 7) / 8;
  const int threads = threads_for(chunks);
  const dim3 grid(static_cast<unsigned>(num_tokens), static_cast<unsigned>((chunks + threads - 1) / threads));
  const auto* typed_in = static_cast<const unsigned short*>(gate_up);
  auto* typed_out = static_cast<unsigned short*>(out);
  launch_between_projections(vector ? silu_mul_kernel<Act, true> : silu_mul_kernel<Act, false>, grid, threads,
                             stream, "silu_mul_kernel", typed_in, typed_out, intermediate);
}

}  // namespace

void embedding_gather_cuda(const void* table, DType table_dtype, const std::int32_t* token_ids,
                           int num_tokens, int hidden, float* residual, CudaStream stream) {
  constexpr const char* kOp = "embedding_gather";
  require(num_tokens >= 0 && hidden > 0, kOp,
          "bad shape: num_tokens " + std::to_string(num_tokens) + ", hidden " + std::to_string(hidden));
  require(table_dtype == DType::bf16 || table_dtype == DType::f16 || table_dtype == DType::f32, kOp,
          "table dtype must be bf16, f16 or f32, got " + std::string(dtype_name(table_dtype)));
  if (num_tokens == 0) return;
  require(table != nullptr && token_ids != nullptr && residual != nullptr, kOp, "null buffer");
  switch (table_dtype) {
    case DType::bf16:
      return launch_embedding_gather<Bf16>(table, token_ids, num_tokens, hidden, residual, stream);
    case DType::f16:
      return launch_embedding_gather<F16>(table, token_ids, num_tokens, hidden, residual, stream);
    default:
      return launch_embedding_gather<F32>(table, token_ids, num_tokens, hidden, residual, stream);
  }
}

void add_rms_norm_cuda(float* residual, const float* delta, const float* weight, void* out, DType act,
                       int num_tokens, int hidden, float eps, CudaStream stream) {
  constexpr const char* kOp = "add_rms_norm";
  require_act(act, kOp);
  require(num_tokens >= 0 && hidden > 0, kOp,
          "bad shape: num_tokens " + std::to_string(num_tokens) + ", hidden " + std::to_string(hidden));
  if (num_tokens == 0) return;
  require(residual != nullptr && weight != nullptr && out != nullptr, kOp, "null buffer");
  if (act == DType::bf16) {
    launch_add_rms_norm<Bf16>(residual, delta, weight, out, num_tokens, hidden, eps, stream);
  } else {
    launch_add_rms_norm<F16>(residual, delta, weight, out, num_tokens, hidden, eps, stream);
  }
}

void qkv_epilogue_cuda(const float* qkv, const float* bias, const float* q_norm, const float* k_norm,
                       const float* inv_freq, const std::int32_t* positions, const std::int32_t* slot_mapping,
                       void* q_out, void* k_cache, void* v_cache, DType act, const QkvEpilogueShape& shape,
                       CudaStream stream) {
  constexpr const char* kOp = "qkv_epilogue";
  require_act(act, kOp);
  const QkvEpilogueShape& s = shape;
  require(s.num_tokens >= 0 && s.num_q_heads > 0 && s.num_kv_heads > 0 && s.page_size > 0, kOp,
          "bad shape: num_tokens " + std::to_string(s.num_tokens) + ", heads " +
              std::to_string(s.num_q_heads) + "/" + std::to_string(s.num_kv_heads) + ", page_size " +
              std::to_string(s.page_size));
  require(s.head_dim > 0 && s.head_dim % 2 == 0 && s.head_dim <= kMaxHeadDim, kOp,
          "head_dim must be even and in [2, 256], got " + std::to_string(s.head_dim));
  require((q_norm == nullptr) == (k_norm == nullptr), kOp, "q_norm and k_norm must both be set or both null");
  if (s.num_tokens == 0) return;
  require(qkv != nullptr && inv_freq != nullptr && positions != nullptr && slot_mapping != nullptr &&
              q_out != nullptr && k_cache != nullptr && v_cache != nullptr,
          kOp, "null buffer");
  const QkvParams p{qkv,
                    bias,
                    q_norm,
                    k_norm,
                    inv_freq,
                    positions,
                    slot_mapping,
                    static_cast<unsigned short*>(q_out),
                    static_cast<unsigned short*>(k_cache),
                    static_cast<unsigned short*>(v_cache),
                    s.num_q_heads,
                    s.num_kv_heads,
                    s.head_dim,
                    s.eps};
  const int total_heads = s.num_q_heads + 2 * s.num_kv_heads;
  const dim3 grid(static_cast<unsigned>(s.num_tokens),
                  static_cast<unsigned>((total_heads + kHeadsPerBlock - 1) / kHeadsPerBlock));
  launch_between_projections(act == DType::bf16 ? qkv_epilogue_kernel<Bf16> : qkv_epilogue_kernel<F16>, grid,
                             kHeadsPerBlock * kWarp, stream, "qkv_epilogue_kernel", p);
}

void silu_mul_cuda(const void* gate_up, void* out, DType act, int num_tokens, int intermediate,
                   CudaStream stream) {
  constexpr const char* kOp = "silu_mul";
  require_act(act, kOp);
  require(num_tokens >= 0 && intermediate > 0, kOp,
          "bad shape: num_tokens " + std::to_string(num_tokens) + ", intermediate " +
              std::to_string(intermediate));
  if (num_tokens == 0) return;
  require(gate_up != nullptr && out != nullptr, kOp, "null buffer");
  if (act == DType::bf16) {
    launch_silu_mul<Bf16>(gate_up, out, num_tokens, intermediate, stream);
  } else {
    launch_silu_mul<F16>(gate_up, out, num_tokens, intermediate, stream);
  }
}

void gather_rows_cuda(const void* in, const std::int32_t* rows, void* out, DType act, int num_rows, int width,
                      CudaStream stream) {
  constexpr const char* kOp = "gather_rows";
  require_act(act, kOp);
  require(num_rows >= 0 && width > 0, kOp,
          "bad shape: num_rows " + std::to_string(num_rows) + ", width " + std::to_string(width));
  if (num_rows == 0) return;
  require(in != nullptr && rows != nullptr && out != nullptr, kOp, "null buffer");
  // Both activation dtypes are 16-bit: the copy moves bits and needs no conversion.
  const bool vector = width % 8 == 0 && aligned(in, 16) && aligned(out, 16);
  const int threads = threads_for((width + 7) / 8);
  const auto* typed_in = static_cast<const unsigned short*>(in);
  auto* typed_out = static_cast<unsigned short*>(out);
  launch_between_projections(vector ? gather_rows_kernel<true> : gather_rows_kernel<false>,
                             dim3(static_cast<unsigned>(num_rows)), threads, stream, "gather_rows_kernel", typed_in,
                             rows, typed_out, width);
}

}  // namespace pagedserve
