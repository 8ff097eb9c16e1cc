// y = x * w^T (+ bias): every projection of the model (QKV, output, MLP, lm_head).
//
// Numerics: x is f32. With bf16 weights x is first rounded to bf16 (nearest even), as the
// transformers bf16 forward, llama.cpp and our CUDA backend do: every product is then exact in f32
// and every path below computes the same sum up to f32 summation order, whatever the batch shape;
// it is what lets the CPU's bf16 dot-product and matrix instructions run at their full rate. With
// f16 or f32 weights x stays f32. f32 weights (exact tests) run one kernel, the FMA dot products,
// at every M, and each row's sum is then the same whatever the batch shape.
//
// Weights stay in their checkpoint dtype (bf16 or f16; f32 for exact tests): an f32 copy would
// double the bytes every decode step reads. The paths, chosen per call by what the CPU has and by
// M as measured (bench/cpu/matmul_cpu.cpp, bench/RESULTS.md; PAGEDSERVE_CPU_KERNEL forces one,
// kernel_override.h):
//   - AMX tiles (bf16 weights, k % 32 == 0, Sapphire Rapids and later) from 2 rows up;
//   - AVX512_BF16 (bf16 weights, Zen 4 and later, Cooper Lake): dot products for small M, the
//     bf16-pair panel matmul for large M;
//   - otherwise small M (decode): dot products that convert the weights on the fly (AVX-512 or
//     AVX2/F16C, a portable loop without them), parallel over blocks of N; one row of x reads each
//     weight row front to back (memory-bound, aims at the bandwidth floor);
//   - large M (prefill): on AVX-512, packed weight panels and broadcast x (matmul_panel_avx512.h;
//     vdpbf16ps for bf16 weights where the CPU has it, f32 FMA otherwise); on older CPUs, blocks
//     of W converted to f32 into the caller's workspace, then OpenBLAS sgemm on each block. Our
//     pool parallelises over the N blocks.
//
// Caller: one thread at a time per ThreadPool (the engine thread, a test, a bench). Never allocates.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>

#include "core/tensor_view.h"
#include "core/thread_pool.h"
#include "kernels/cpu/row_partition.h"

namespace pagedserve {

enum class MatmulPath {
  automatic,     // by M, as measured
  dot_portable,  // small-M path, scalar code (what a CPU without AVX2 runs)
  dot_avx2,      // small-M path, AVX2/FMA/F16C (falls back to portable without them)
  dot_simd,      // small-M path, the SIMD that measured fastest on this CPU (AVX-512 or AVX2)
  dot_avx512,    // small-M path forced to AVX-512 (else as dot_avx2)
  sgemm_blocks,  // large-M path: convert W blocks to f32, OpenBLAS sgemm per block
  amx,           // AMX tiles (bf16 w, k % 32 == 0, amx_bf16_usable()); otherwise as automatic
  dot_avx512bf16,  // vdpbf16ps dot products (bf16 w, cpu_has_avx512_bf16()); otherwise as automatic
  panel_simd,      // large-M AVX-512 panel matmul (bf16 pairs on AVX512_BF16, else FMA); else automatic
};

// Floats of workspace `matmul` needs for up to `max_m` rows of x with `k` columns on a pool of
// `num_threads`.
std::size_t matmul_workspace_floats(std::int64_t max_m, std::int64_t k, int num_threads);

// y[m, n] = sum_k x[m, k] * w[n, k] + bias[n], x rounded to bf16 first when w is bf16.
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

// Several matmuls of one x (all weights of one dtype) in one parallel launch: one fan-out instead of several, and small
// weights (k_proj, v_proj) share the threads with the big one instead of idling some of them.
void matmul_group(const TensorView& x,  // [m, k] f32
                  std::initializer_list<MatmulTarget> targets,
                  const TensorView& workspace,  // [matmul_workspace_floats(>= m, k, pool.size())] f32
                  ThreadPool& pool, MatmulPath path = MatmulPath::automatic);

// How matmul_group cuts these weights' rows (the targets' w: one dtype, [n, k] each, not all n
// zero) into parts for m > 0 rows of x on a pool of `threads` threads (row_partition.h); thread t
// owns parts [PartRanges::first_owned(parts, threads, t), first_owned(..., t + 1)) and takes them
// first (part_ranges.h). For warming a thread's caches with its rows before the call
// (matmul_warming.h). Assumes a workspace that fits every path.
RowPartition matmul_partition(std::int64_t m, std::initializer_list<TensorView> weights, int threads);

// True when this CPU runs the AVX2/F16C kernels (FMA, F16C and AVX2 all present).
bool cpu_has_avx2_fma_f16c() noexcept;

}  // namespace pagedserve
