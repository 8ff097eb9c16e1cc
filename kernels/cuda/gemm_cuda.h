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

class CublasGemm {
 public:
  explicit CublasGemm(CudaStream stream);
  ~CublasGemm();
  CublasGemm(const CublasGemm&) = delete;
  CublasGemm& operator=(const CublasGemm&) = delete;

  // y[m, n] = x[m, k] * w[n, k]^T. x and w share `in` (bf16 | f16);
  // y is `out` (= in, or f32). Row-major, contiguous, device pointers. m == 0 does nothing.
  void matmul(const void* x, const void* w, void* y, DType in, DType out, int m, int n, int k);

 private:
  void* handle_ = nullptr;  // cublasHandle_t
  void* workspace_ = nullptr;
  std::size_t workspace_bytes_ = 0;
  CudaStream stream_ = nullptr;
};

}  // namespace pagedserve
