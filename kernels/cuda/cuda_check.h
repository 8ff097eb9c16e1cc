// Checks every CUDA runtime call and kernel launch of the CUDA kernels (DESIGN.md §6). A failure
// throws SetupError naming the call: on the serving path a CUDA error means the device is unusable.
// Internal to kernels/cuda (includes cuda_runtime.h); any thread.
#pragma once

#include <cuda_runtime.h>

#include <string>

#include "core/error.h"

namespace pagedserve::cuda_detail {

inline void check_cuda(cudaError_t status, const char* what) {
  if (status != cudaSuccess) throw SetupError(std::string("cuda: ") + what, cudaGetErrorString(status));
}

// After a <<<>>> launch: catches bad configurations (grid, shared memory) at once.
inline void check_launch(const char* kernel) { check_cuda(cudaGetLastError(), kernel); }

}  // namespace pagedserve::cuda_detail
