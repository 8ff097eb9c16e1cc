// y = x * w^T (+ bias): every projection of the model (QKV, output, MLP, lm_head).
//
// Weights stay in their checkpoint dtype (bf16 or f16; f32 for exact tests): an f32 copy would
// double the bytes every decode step reads. Two strategies, chosen by the number of rows M:
//   - small M (decode): dot products that convert the weights on the fly (AVX-512 or AVX2/F16C,
//     whichever the CPU has, a portable loop otherwise), parallel over blocks of N. Batch 1 is
//     memory-bound and aims at the bandwidth floor; batch 16 is compute-bound.
//   - large M (prefill): blocks of W converted to f32 into the caller's workspace, then OpenBLAS
//     sgemm on each block; our pool parallelises over the N blocks and OpenBLAS runs one thread.
//   - on CPUs with AMX (bf16 weights, k % 32 == 0): AMX tiles from 2 rows up (one row stays on the
//     dot kernel, which reads at the floor), x split into three bf16 terms so the result keeps f32
//     precision (matmul_amx.h).
// The thresholds were measured (bench/cpu/matmul_cpu.cpp; bench/RESULTS.md).
//
// Caller: one thread at a time per ThreadPool (the engine thread, a test, a bench). Never allocates.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>

#include "core/tensor_view.h"
#include "core/thread_pool.h"

namespace pagedserve {

enum class MatmulPath {
  automatic,     // by M, as measured
  dot_portable,  // small-M path, scalar code (what a CPU without AVX2 runs)
  dot_avx2,      // small-M path, AVX2/FMA/F16C (falls back to portable without them)
  dot_simd,      // small-M path, the widest SIMD the CPU has (AVX-512, else as dot_avx2)
  sgemm_blocks,  // large-M path: convert W blocks to f32, OpenBLAS sgemm per block
  amx,           // AMX tiles (bf16 w, k % 32 == 0, amx_bf16_usable()); otherwise as automatic
};

// Floats of workspace `matmul` needs for up to `max_m` rows of x with `k` columns on a pool of
// `num_threads`.
std::size_t matmul_workspace_floats(std::int64_t max_m, std::int64_t k, int num_threads);

// y[m, n] = sum_k x[m, k] * w[n, k] + bias[n].
// x rows and y rows may be strided (stride(0) >= row length); w is contiguous.
void matmul(const TensorView& x,          // [m, k] f32
            const TensorView& w,          // [n, k] bf16 | f16 | f32
            const TensorView& bias,       // [n] f32, or a default (empty) view for none
            const TensorView& y,          // [m, n] f32
            const TensorView& workspace,  // [matmul_workspace_floats(>= m, k, pool.size())] f32
            ThreadPool& pool, MatmulPath path = MatmulPath::automatic);

// One weight of a group of projections that read the same x (q/k/v, gate/up).
struct MatmulTarget {
  TensorView w;     // [n, k] bf16 | f16 | f32
  TensorView bias;  // [n] f32, or empty
  TensorView y;     // [m, n] f32
};

// Several matmuls of one x in one parallel launch: one fan-out instead of several, and small
// weights (k_proj, v_proj) share the threads with the big one instead of idling some of them.
void matmul_group(const TensorView& x,  // [m, k] f32
                  std::initializer_list<MatmulTarget> targets,
                  const TensorView& workspace,  // [matmul_workspace_floats(>= m, k, pool.size())] f32
                  ThreadPool& pool, MatmulPath path = MatmulPath::automatic);

// True when this CPU runs the AVX2/F16C kernels (FMA, F16C and AVX2 all present).
bool cpu_has_avx2_fma_f16c() noexcept;

}  // namespace pagedserve
