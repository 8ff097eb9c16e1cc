// CublasGemm (gemm_cuda.h): row-major y = x w^T through cublasGemmEx, f32 compute. cuBLAS is
// column-major, so the call computes y^T[n, m] = w[n, k] x^T: A = w read transposed (lda = k),
// B = x as stored (ldb = k), C = y (ldc = n). The handle gets our stream and a workspace of its
// own at construction, so a call neither allocates nor synchronises and can be graph-captured.
#include "kernels/cuda/gemm_cuda.h"

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <string>

#include "core/error.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/skinny_gemm_cuda.h"

namespace pagedserve {

namespace {

constexpr std::size_t kWorkspaceBytes = std::size_t{32} << 20;  // NVIDIA's suggestion for Hopper

void check_cublas(cublasStatus_t status, const char* call) {
  if (status != CUBLAS_STATUS_SUCCESS)
    throw SetupError("cublas", std::string(call) + ": " + cublasGetStatusString(status));
}

std::string shape_text(int m, int n, int k) {
  return "m=" + std::to_string(m) + " n=" + std::to_string(n) + " k=" + std::to_string(k);
}

cudaDataType_t cuda_type(DType dtype) {
  switch (dtype) {
    case DType::bf16:
      return CUDA_R_16BF;
    case DType::f16:
      return CUDA_R_16F;
    default:
      return CUDA_R_32F;
  }
}

}  // namespace

CublasGemm::CublasGemm(CudaStream stream) : stream_(stream) {
  cublasHandle_t handle = nullptr;
  check_cublas(cublasCreate(&handle), "cublasCreate");
  void* workspace = nullptr;
  try {
    const cudaError_t allocated = cudaMalloc(&workspace, kWorkspaceBytes);
    if (allocated != cudaSuccess) workspace = nullptr;
    cuda_detail::check_cuda(allocated, "cudaMalloc (cuBLAS workspace)");
    check_cublas(cublasSetStream(handle, stream_), "cublasSetStream");
    // After cublasSetStream, which puts the handle back on cuBLAS's own workspace pool.
    check_cublas(cublasSetWorkspace(handle, workspace, kWorkspaceBytes), "cublasSetWorkspace");
    // Tensor cores as by default, but split-K partial sums are reduced in f32, not in a 16-bit y.
    check_cublas(cublasSetMathMode(
                     handle, static_cast<cublasMath_t>(CUBLAS_DEFAULT_MATH |
                                                       CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION)),
                 "cublasSetMathMode");
  } catch (...) {
    cublasDestroy(handle);
    if (workspace != nullptr) cudaFree(workspace);
    throw;
  }
  handle_ = handle;
  workspace_ = workspace;
  workspace_bytes_ = kWorkspaceBytes;
}

CublasGemm::~CublasGemm() {
  // Destroying the handle waits for its work, which may still use the workspace.
  if (handle_ != nullptr) cublasDestroy(static_cast<cublasHandle_t>(handle_));
  if (workspace_ != nullptr) cudaFree(workspace_);
}

void CublasGemm::matmul(const void* x, const void* w, void* y, DType in, DType out, int m, int n, int k) {
  if ((in != DType::bf16 && in != DType::f16) || (out != in && out != DType::f32)) {
    throw SetupError("cublas matmul", "unsupported dtypes in=" + std::string(dtype_name(in)) + " out=" +
                                          std::string(dtype_name(out)) + " (" + shape_text(m, n, k) + ")");
  }
  if (m < 0 || n <= 0 || k <= 0) throw SetupError("cublas matmul", "bad shape " + shape_text(m, n, k));
  if (m == 0) return;
  if (x == nullptr || w == nullptr || y == nullptr) {
    throw SetupError("cublas matmul", "null buffer (" + shape_text(m, n, k) + ")");
  }
  // Decode at small batches: cuBLAS streamed the weights at 1.5-2.5 TB/s on these shapes (H100,
  // 3.1 TB/s read); the warp-per-row kernel aims at the read bandwidth.
  if (m <= skinny_max_rows_ && skinny_gemm_supported(x, w, in, out, m, k)) {
    skinny_gemm_cuda(x, w, y, in, out, m, n, k, stream_);
    return;
  }
  const float alpha = 1.0f;
  // beta = 0: y is only written. (An accumulating y = x w^T + y was measured on the H100 to round
  // the product to y's 16-bit type before the add, so it is not offered.)
  const float beta = 0.0f;
  const cudaDataType_t in_type = cuda_type(in);
  const cublasStatus_t status = cublasGemmEx(static_cast<cublasHandle_t>(handle_), CUBLAS_OP_T, CUBLAS_OP_N,
                                             n, m, k, &alpha, w, in_type, k, x, in_type, k, &beta, y,
                                             cuda_type(out), n, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
  if (status != CUBLAS_STATUS_SUCCESS) {
    throw SetupError("cublas",
                     "cublasGemmEx (" + shape_text(m, n, k) + "): " + cublasGetStatusString(status));
  }
}

}  // namespace pagedserve
