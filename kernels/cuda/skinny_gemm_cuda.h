// y = x w^T for a handful of rows (decode at batch 1-2) on CUDA cores: the weights are streamed
// once at 2.1-3.1 TB/s where cuBLAS reached 1.6-2.8 of 3.1 TB/s on the decode shapes of
// Llama-3.1-8B at one row (H100, bench/cuda/model_cuda). At 4 rows it is already slower than
// cuBLAS (every x row is re-read from L1 per weight chunk), at 8 much slower; CublasGemm uses it
// up to kSkinnyGemmDefaultRows (gemm_cuda.h). Internal to kernels/cuda: CublasGemm
// calls it when skinny_gemm_supported() says yes. One warp per weight row, 16-byte loads, f32
// accumulation; no allocation, no host synchronisation (graph-capturable). By default
// (PAGEDSERVE_CUDA_PDL unset, 1 or 2) it is launched as a programmatic dependent (sm_90 PDL): its
// first weight loads overlap the end of the kernel that writes x (batch-1 decode 1.5% faster on
// the H100); it lets the grid after it launch once every warp has its last weights in flight
// (used by PAGEDSERVE_CUDA_PDL=2, grid_dependency.cuh).
#pragma once

#include "core/dtype.h"

struct CUstream_st;

namespace pagedserve {

inline constexpr int kSkinnyGemmMaxRows = 4;

// m in [1, kSkinnyGemmMaxRows], k a multiple of 8, x and w 16-byte aligned, in bf16 | f16,
// out = in or f32.
bool skinny_gemm_supported(const void* x, const void* w, DType in, DType out, int m, int k);

void skinny_gemm_cuda(const void* x,  // [m, k] in
                      const void* w,  // [n, k] in
                      void* y,        // [m, n] out
                      DType in, DType out, int m, int n, int k, CUstream_st* stream);

}  // namespace pagedserve
