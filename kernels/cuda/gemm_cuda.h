// Dense GEMMs of the model on cuBLAS: y = x w^T with w in the checkpoint's [out, in] layout,
// bf16/f16 inputs, f32 accumulation, output in the input dtype or f32 (the logits).
//
// One CublasGemm per stream/thread: it owns a cuBLAS handle bound to the stream it was made with
// and a workspace; not thread-safe. No host synchronisation, no allocation after construction,
// so calls can be captured in a CUDA graph. Errors throw SetupError naming the call and the shape.
#pragma once

#include <cstddef>

#include "core/dtype.h"

struct CUstream_st;

namespace pagedserve {

using CudaStream = CUstream_st*;

// Decode batches up to this many rows go to the skinny kernel: bench/cuda/model_cuda compares it
// with cuBLAS per shape and row count (H100, Llama-3.1-8B shapes: faster at 1 row on every
// projection, at 2 rows on qkv/gate_up/lm_head and even on o_proj/down, slower from 4 rows).
inline constexpr int kSkinnyGemmDefaultRows = 2;

class CublasGemm {
 public:
  explicit CublasGemm(CudaStream stream);
  ~CublasGemm();
  CublasGemm(const CublasGemm&) = delete;
  CublasGemm& operator=(const CublasGemm&) = delete;

  // y[m, n] = x[m, k] * w[n, k]^T. x and w share `in` (bf16 | f16);
  // y is `out` (= in, or f32). Row-major, contiguous, device pointers. m == 0 does nothing.
  void matmul(const void* x, const void* w, void* y, DType in, DType out, int m, int n, int k);

  // Calls with m <= rows (and a 16-byte aligned k % 8 == 0 shape) take the skinny CUDA-core
  // kernel instead of cuBLAS; 0 sends everything to cuBLAS (the bench compares both).
  void set_skinny_max_rows(int rows) noexcept { skinny_max_rows_ = rows; }

 private:
  void* handle_ = nullptr;  // cublasHandle_t
  void* workspace_ = nullptr;
  std::size_t workspace_bytes_ = 0;
  CudaStream stream_ = nullptr;
  int skinny_max_rows_ = kSkinnyGemmDefaultRows;
};

}  // namespace pagedserve
