// Programmatic dependent launch (sm_90): a grid launched with
// cudaLaunchAttributeProgrammaticStreamSerialization may start before the grid ahead of it on the
// stream has finished. Both instructions are no-ops in a grid launched without the attribute.
#pragma once

#include <cuda_runtime.h>

#include <cstdlib>
#include <stdexcept>
#include <string>

#include "kernels/cuda/cuda_check.h"

namespace pagedserve::cuda_detail {

// Lets the next grid on the stream (when launched as a programmatic dependent) be scheduled now.
// Always safe: the dependent still waits for this whole grid before it reads anything; it only
// hides the dependent's launch and lets it do work that reads nothing of ours (weight loads).
__device__ __forceinline__ void allow_dependent_launch() {
  asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
}

// Blocks until every grid this one depends on has completed and its writes are visible. A grid
// launched as a programmatic dependent must call this before it reads their outputs or writes
// anything they might still read.
__device__ __forceinline__ void wait_for_grid_dependencies() { asm volatile("griddepcontrol.wait;\n" ::: "memory"); }

// Host side: launches `kernel` on `stream`, as a programmatic dependent of the grid before it when
// `programmatic` (else as an ordinary stream successor); a launch error throws, naming `name`.
template <typename... Params, typename... Args>
void launch_dependent(void (*kernel)(Params...), dim3 grid, dim3 block, cudaStream_t stream, bool programmatic,
                      const char* name, Args... args) {
  cudaLaunchAttribute attribute{};
  attribute.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attribute.val.programmaticStreamSerializationAllowed = 1;
  cudaLaunchConfig_t config{};
  config.gridDim = grid;
  config.blockDim = block;
  config.dynamicSmemBytes = 0;
  config.stream = stream;
  config.attrs = &attribute;
  config.numAttrs = programmatic ? 1 : 0;
  check_cuda(cudaLaunchKernelEx(&config, kernel, args...), name);
}

// PAGEDSERVE_CUDA_PDL: which kernels of a step launch as programmatic dependents.
//   0: none (beyond the decode attention's split merge, always on);
//   unset, empty or 1 (the default): also the skinny GEMM (batch 1-2), which loads its first
//      weights before waiting for x: batch-1 decode 5.94-5.95 ms against 6.03 at 0 (H100, A B A B,
//      bench/RESULTS.md);
//   2: also the elementwise kernels between the projections (add + RMSNorm, the q/k/v epilogue,
//      SiLU x up, the row gather), which wait at their start, so that their launch overlaps the
//      kernel before them (the skinny GEMM lets them launch once its last weights are in
//      flight). Measured slower than 1 (6.11 ms in the runs above; 5.99-6.00 against 5.85-5.86
//      after the later trigger): kept for experiments, not the default.
// Read once per process; any other value is an error at first use, never ignored.
inline int programmatic_launch_level() {
  static const int level = [] {
    const char* value = std::getenv("PAGEDSERVE_CUDA_PDL");
    const std::string text = value == nullptr ? "" : value;
    if (text == "0") return 0;
    if (text.empty() || text == "1") return 1;
    if (text == "2") return 2;
    throw std::invalid_argument("PAGEDSERVE_CUDA_PDL must be 0, 1 or 2, got '" + text + "'");
  }();
  return level;
}

}  // namespace pagedserve::cuda_detail
