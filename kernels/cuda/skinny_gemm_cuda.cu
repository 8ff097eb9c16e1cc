#include "kernels/cuda/skinny_gemm_cuda.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <string>
#include <type_traits>

#include "core/error.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/grid_dependency.cuh"

namespace pagedserve {
namespace {

constexpr int kWarp = 32;
constexpr int kWarpsPerBlock = 8;  // one weight row per warp
constexpr int kUnroll = 4;         // 16-byte chunks of w in flight per lane

template <typename T>
__device__ __forceinline__ void to_float8(const uint4& raw, float (&out)[8]) {
  const unsigned words[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    if constexpr (sizeof(T) == 2 && std::is_same_v<T, __nv_bfloat16>) {
      out[2 * i] = __uint_as_float(words[i] << 16);
      out[2 * i + 1] = __uint_as_float(words[i] & 0xffff0000u);
    } else {
      const __half2 h = *reinterpret_cast<const __half2*>(&words[i]);
      const float2 f = __half22float2(h);
      out[2 * i] = f.x;
      out[2 * i + 1] = f.y;
    }
  }
}

template <typename T, typename Out>
__device__ __forceinline__ Out from_float(float value) {
  if constexpr (std::is_same_v<Out, float>) {
    return value;
  } else if constexpr (std::is_same_v<Out, __nv_bfloat16>) {
    return __float2bfloat16_rn(value);
  } else {
    return __float2half_rn(value);
  }
}

// Loads one batch of a warp's weight chunks: chunk base + u * kWarp for u < kUnroll (zeros past
// the row's end). Streamed (__ldcs): every weight is read once per call, so it is not kept in L2.
__device__ __forceinline__ void load_weight_batch(const uint4* w_row, int base, int chunks, uint4 (&out)[kUnroll]) {
#pragma unroll
  for (int u = 0; u < kUnroll; ++u) {
    const int c = base + u * kWarp;
    out[u] = c < chunks ? __ldcs(w_row + c) : make_uint4(0, 0, 0, 0);
  }
}

// grid [ceil(n / kWarpsPerBlock)], block [kWarpsPerBlock * 32]. Warp r of the grid computes
// y[0..m-1, r]: it streams w[r, :] in 16-byte chunks (lane-strided, double-buffered batches of
// kUnroll chunks) and reads the matching chunk of each x row (small, served from L1/L2). Rows
// m..MaxRows-1 of the register tile are skipped (m <= MaxRows).
// Launched as a programmatic dependent of the kernel that writes x: the first weight batch is
// loaded before waiting for that kernel (the weights do not depend on it), so the DRAM ramp of
// this grid overlaps the tail of the previous one.
template <typename T, typename Out, int MaxRows>
__global__ void __launch_bounds__(kWarpsPerBlock* kWarp)
    skinny_gemm_kernel(const T* __restrict__ x,  // [m, k]
                       const T* __restrict__ w,  // [n, k]
                       Out* __restrict__ y,      // [m, n]
                       int m, int n, int k) {
  const int lane = static_cast<int>(threadIdx.x) % kWarp;
  const int row = static_cast<int>(blockIdx.x) * kWarpsPerBlock + static_cast<int>(threadIdx.x) / kWarp;
  if (row >= n) return;
  const int chunks = k / 8;  // 16-byte chunks per row
  constexpr int kBatch = kWarp * kUnroll;
  const uint4* w_row = reinterpret_cast<const uint4*>(w + static_cast<std::int64_t>(row) * k);
  uint4 next[kUnroll];
  load_weight_batch(w_row, lane, chunks, next);
  cuda_detail::wait_for_grid_dependencies();  // x is written by the grid before us
  float acc[MaxRows];
#pragma unroll
  for (int r = 0; r < MaxRows; ++r) acc[r] = 0.0f;
  for (int base = lane; base < chunks; base += kBatch) {
    uint4 w_raw[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) w_raw[u] = next[u];
    if (base + kBatch < chunks) {
      load_weight_batch(w_row, base + kBatch, chunks, next);
    } else {
      // This warp's last weights are in flight: the elementwise kernel after us
      // (PAGEDSERVE_CUDA_PDL=2) may launch once every block has got here, so its blocks become
      // resident while the last wave drains, not while earlier waves still need the SMs. It
      // waits for all of this grid before it reads y.
      cuda_detail::allow_dependent_launch();
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int c = base + u * kWarp;
      if (c >= chunks) break;
      float wf[8];
      to_float8<T>(w_raw[u], wf);
#pragma unroll
      for (int r = 0; r < MaxRows; ++r) {
        if (r >= m) break;
        const uint4 x_raw = __ldg(reinterpret_cast<const uint4*>(x + static_cast<std::int64_t>(r) * k) + c);
        float xf[8];
        to_float8<T>(x_raw, xf);
#pragma unroll
        for (int i = 0; i < 8; ++i) acc[r] = fmaf(wf[i], xf[i], acc[r]);
      }
    }
  }
#pragma unroll
  for (int r = 0; r < MaxRows; ++r) {
    if (r >= m) break;
    float value = acc[r];
#pragma unroll
    for (int offset = kWarp / 2; offset > 0; offset /= 2)
      value += __shfl_xor_sync(0xffffffffu, value, offset);
    if (lane == 0) y[static_cast<std::int64_t>(r) * n + row] = from_float<T, Out>(value);
  }
}

template <typename T, typename Out, int MaxRows>
void launch_rows(const T* x, const T* w, Out* y, int m, int n, int k, cudaStream_t stream) {
  cuda_detail::launch_dependent(skinny_gemm_kernel<T, Out, MaxRows>,
                                dim3(static_cast<unsigned>((n + kWarpsPerBlock - 1) / kWarpsPerBlock)),
                                dim3(kWarpsPerBlock * kWarp), stream, cuda_detail::programmatic_launch_level() >= 1,
                                "skinny_gemm_kernel", x, w, y, m, n, k);
}

template <typename T, typename Out>
void launch(const void* x, const void* w, void* y, int m, int n, int k, cudaStream_t stream) {
  static_assert(kSkinnyGemmMaxRows == 4, "the cases below cover 1..kSkinnyGemmMaxRows");
  const auto* xt = static_cast<const T*>(x);
  const auto* wt = static_cast<const T*>(w);
  auto* yt = static_cast<Out*>(y);
  switch (m) {
    case 1:
      launch_rows<T, Out, 1>(xt, wt, yt, m, n, k, stream);
      break;
    case 2:
      launch_rows<T, Out, 2>(xt, wt, yt, m, n, k, stream);
      break;
    default:
      launch_rows<T, Out, 4>(xt, wt, yt, m, n, k, stream);
      break;
  }
}

bool aligned16(const void* p) { return reinterpret_cast<std::uintptr_t>(p) % 16 == 0; }

}  // namespace

bool skinny_gemm_supported(const void* x, const void* w, DType in, DType out, int m, int k) {
  return m >= 1 && m <= kSkinnyGemmMaxRows && k % 8 == 0 && k > 0 && aligned16(x) && aligned16(w) &&
         (in == DType::bf16 || in == DType::f16) && (out == in || out == DType::f32);
}

void skinny_gemm_cuda(const void* x, const void* w, void* y, DType in, DType out, int m, int n, int k,
                      CUstream_st* stream) {
  if (!skinny_gemm_supported(x, w, in, out, m, k)) {
    throw SetupError("skinny_gemm_cuda", "unsupported call (m " + std::to_string(m) + ", k " +
                                             std::to_string(k) + ", dtypes or alignment)");
  }
  if (in == DType::bf16) {
    if (out == DType::f32) {
      launch<__nv_bfloat16, float>(x, w, y, m, n, k, stream);
    } else {
      launch<__nv_bfloat16, __nv_bfloat16>(x, w, y, m, n, k, stream);
    }
  } else if (out == DType::f32) {
    launch<__half, float>(x, w, y, m, n, k, stream);
  } else {
    launch<__half, __half>(x, w, y, m, n, k, stream);
  }
}

}  // namespace pagedserve
