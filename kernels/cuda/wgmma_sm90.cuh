// Thin wrappers over the sm_90a warpgroup instructions the wgmma prefill kernel uses: shared
// memory matrix descriptors for the 128-byte swizzled layout, wgmma.mma_async in the two forms
// the kernel needs (A and B from shared memory; A from registers), and the fence / commit / wait
// around them. Device code only; every thread of a warpgroup (4 consecutive warps starting at a
// multiple of 4) must execute each call together.
//
// Shared tiles are stored as the hardware's 128-byte swizzle expects: a [rows, 64 x 16-bit]
// block per "atom" (128 bytes a row, 1024-byte aligned), the 16-byte chunk c of row r at chunk
// position c ^ (r % 8). A [rows, D] tile is D / 64 such blocks one after another.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <type_traits>

namespace pagedserve::cuda_detail {

// Element offset of 16-byte chunk `chunk` (0 .. D/8 - 1) of row `row` in a swizzled [rows, D]
// tile of 16-bit elements.
template <int kTileRows>
__device__ __forceinline__ int swizzled_chunk_offset(int row, int chunk) {
  return (chunk / 8) * kTileRows * 64 + row * 64 + ((chunk % 8) ^ (row % 8)) * 8;
}

// Descriptor of a shared-memory operand in the 128-byte swizzled layout. `byte_address` is a
// shared-window address; `leading_bytes` / `stride_bytes` are the PTX ISA's leading and stride
// dimension byte offsets (for K-major operands: stride = 1024, the distance between groups of 8
// rows, and leading unused; for MN-major: leading = distance between 64-element atoms along
// M/N, stride = distance between groups of 8 rows along K).
__device__ __forceinline__ std::uint64_t smem_descriptor(std::uint32_t byte_address,
                                                         std::uint32_t leading_bytes,
                                                         std::uint32_t stride_bytes) {
  std::uint64_t desc = 0;
  desc |= static_cast<std::uint64_t>((byte_address & 0x3ffff) >> 4);
  desc |= static_cast<std::uint64_t>((leading_bytes & 0x3ffff) >> 4) << 16;
  desc |= static_cast<std::uint64_t>((stride_bytes & 0x3ffff) >> 4) << 32;
  desc |= std::uint64_t{1} << 62;  // 128-byte swizzle
  return desc;
}

// Orders this thread's earlier register writes before the warpgroup's next wgmma reads them.
__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() {
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
}
template <int kPending>
__device__ __forceinline__ void wgmma_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(kPending) : "memory");
}

// Pins a register array at this point of the program: the compiler may not move reads or
// writes of it across the call. Used after wgmma_wait (the asm of an mma "writes" its
// accumulators at issue time as far as the compiler knows) and before wgmma_fence.
template <int kBlocks>
__device__ __forceinline__ void fence_registers(float (&r)[kBlocks][4]) {
#pragma unroll
  for (int i = 0; i < kBlocks; ++i) {
#pragma unroll
    for (int e = 0; e < 4; ++e) asm volatile("" : "+f"(r[i][e])::"memory");
  }
}

// Ordinary shared-memory writes (cp.async included) become visible to the async proxy that
// wgmma reads through; each writing thread fences before the barrier that publishes them.
__device__ __forceinline__ void fence_proxy_async_shared() {
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
}

// The operand lists below are spelled out: PTX takes one operand per accumulator register.
// Accumulator layout (both forms): warp w of the warpgroup holds rows 16 w + lane / 4 (elements
// [j][0..1], columns 8 j + 2 (lane % 4) + {0, 1}) and that row + 8 (elements [j][2..3]) — the
// mma.sync m16n8k16 C layout, one [4] per 8 columns.

#define PAGEDSERVE_WGMMA_SS_M64N64K16(TYPE)                                                              \
  asm volatile(                                                                                          \
      "{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"                                                       \
      "wgmma.mma_async.sync.aligned.m64n64k16.f32." TYPE "." TYPE                                        \
      " "                                                                                                \
      "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, " \
      "%21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, "                                         \
      "%32, %33, p, 1, 1, 0, 0;\n}\n"                                                                    \
      : "+f"(d[0][0]), "+f"(d[0][1]), "+f"(d[0][2]), "+f"(d[0][3]), "+f"(d[1][0]), "+f"(d[1][1]),        \
        "+f"(d[1][2]), "+f"(d[1][3]), "+f"(d[2][0]), "+f"(d[2][1]), "+f"(d[2][2]), "+f"(d[2][3]),        \
        "+f"(d[3][0]), "+f"(d[3][1]), "+f"(d[3][2]), "+f"(d[3][3]), "+f"(d[4][0]), "+f"(d[4][1]),        \
        "+f"(d[4][2]), "+f"(d[4][3]), "+f"(d[5][0]), "+f"(d[5][1]), "+f"(d[5][2]), "+f"(d[5][3]),        \
        "+f"(d[6][0]), "+f"(d[6][1]), "+f"(d[6][2]), "+f"(d[6][3]), "+f"(d[7][0]), "+f"(d[7][1]),        \
        "+f"(d[7][2]), "+f"(d[7][3])                                                                     \
      : "l"(desc_a), "l"(desc_b), "r"(scale_d))

// d[8][4] (+)= A[64 x 16] (shared, K-major) * B[16 x 64] (shared, K-major); scale_d 0 overwrites d.
template <typename T>
__device__ __forceinline__ void wgmma_m64n64k16_ss(float (&d)[8][4], std::uint64_t desc_a,
                                                   std::uint64_t desc_b, int scale_d) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    PAGEDSERVE_WGMMA_SS_M64N64K16("bf16");
  } else {
    PAGEDSERVE_WGMMA_SS_M64N64K16("f16");
  }
}
#undef PAGEDSERVE_WGMMA_SS_M64N64K16

#define PAGEDSERVE_WGMMA_RS_M64N64K16(TYPE)                                                              \
  asm volatile(                                                                                          \
      "{\n.reg .pred p;\nsetp.ne.b32 p, %37, 0;\n"                                                       \
      "wgmma.mma_async.sync.aligned.m64n64k16.f32." TYPE "." TYPE                                        \
      " "                                                                                                \
      "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, " \
      "%21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, "                                         \
      "{%32, %33, %34, %35}, %36, p, 1, 1, 1;\n}\n"                                                      \
      : "+f"(d[0][0]), "+f"(d[0][1]), "+f"(d[0][2]), "+f"(d[0][3]), "+f"(d[1][0]), "+f"(d[1][1]),        \
        "+f"(d[1][2]), "+f"(d[1][3]), "+f"(d[2][0]), "+f"(d[2][1]), "+f"(d[2][2]), "+f"(d[2][3]),        \
        "+f"(d[3][0]), "+f"(d[3][1]), "+f"(d[3][2]), "+f"(d[3][3]), "+f"(d[4][0]), "+f"(d[4][1]),        \
        "+f"(d[4][2]), "+f"(d[4][3]), "+f"(d[5][0]), "+f"(d[5][1]), "+f"(d[5][2]), "+f"(d[5][3]),        \
        "+f"(d[6][0]), "+f"(d[6][1]), "+f"(d[6][2]), "+f"(d[6][3]), "+f"(d[7][0]), "+f"(d[7][1]),        \
        "+f"(d[7][2]), "+f"(d[7][3])                                                                     \
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc_b), "r"(scale_d))

// d[8][4] (+)= A[64 x 16] (registers, the mma.sync m16n8k16 A layout per warp) * B[16 x 64]
// (shared, MN-major: the transpose bit set); scale_d 0 overwrites d.
template <typename T>
__device__ __forceinline__ void wgmma_m64n64k16_rs(float (&d)[8][4], const std::uint32_t (&a)[4],
                                                   std::uint64_t desc_b, int scale_d) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    PAGEDSERVE_WGMMA_RS_M64N64K16("bf16");
  } else {
    PAGEDSERVE_WGMMA_RS_M64N64K16("f16");
  }
}
#undef PAGEDSERVE_WGMMA_RS_M64N64K16

#define PAGEDSERVE_WGMMA_RS_M64N128K16(TYPE)                                                                 \
  asm volatile(                                                                                              \
      "{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"                                                           \
      "wgmma.mma_async.sync.aligned.m64n128k16.f32." TYPE "." TYPE                                           \
      " "                                                                                                    \
      "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, "     \
      "%21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, " \
      "%41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, " \
      "%61, %62, %63}, "                                                                                     \
      "{%64, %65, %66, %67}, %68, p, 1, 1, 1;\n}\n"                                                          \
      : "+f"(d[0][0]), "+f"(d[0][1]), "+f"(d[0][2]), "+f"(d[0][3]), "+f"(d[1][0]), "+f"(d[1][1]),            \
        "+f"(d[1][2]), "+f"(d[1][3]), "+f"(d[2][0]), "+f"(d[2][1]), "+f"(d[2][2]), "+f"(d[2][3]),            \
        "+f"(d[3][0]), "+f"(d[3][1]), "+f"(d[3][2]), "+f"(d[3][3]), "+f"(d[4][0]), "+f"(d[4][1]),            \
        "+f"(d[4][2]), "+f"(d[4][3]), "+f"(d[5][0]), "+f"(d[5][1]), "+f"(d[5][2]), "+f"(d[5][3]),            \
        "+f"(d[6][0]), "+f"(d[6][1]), "+f"(d[6][2]), "+f"(d[6][3]), "+f"(d[7][0]), "+f"(d[7][1]),            \
        "+f"(d[7][2]), "+f"(d[7][3]), "+f"(d[8][0]), "+f"(d[8][1]), "+f"(d[8][2]), "+f"(d[8][3]),            \
        "+f"(d[9][0]), "+f"(d[9][1]), "+f"(d[9][2]), "+f"(d[9][3]), "+f"(d[10][0]), "+f"(d[10][1]),          \
        "+f"(d[10][2]), "+f"(d[10][3]), "+f"(d[11][0]), "+f"(d[11][1]), "+f"(d[11][2]), "+f"(d[11][3]),      \
        "+f"(d[12][0]), "+f"(d[12][1]), "+f"(d[12][2]), "+f"(d[12][3]), "+f"(d[13][0]), "+f"(d[13][1]),      \
        "+f"(d[13][2]), "+f"(d[13][3]), "+f"(d[14][0]), "+f"(d[14][1]), "+f"(d[14][2]), "+f"(d[14][3]),      \
        "+f"(d[15][0]), "+f"(d[15][1]), "+f"(d[15][2]), "+f"(d[15][3])                                       \
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc_b), "r"(scale_d))

// d[16][4] (+)= A[64 x 16] (registers, the mma.sync m16n8k16 A layout per warp) * B[16 x 128]
// (shared, MN-major: the transpose bit set); scale_d 0 overwrites d.
template <typename T>
__device__ __forceinline__ void wgmma_m64n128k16_rs(float (&d)[16][4], const std::uint32_t (&a)[4],
                                                    std::uint64_t desc_b, int scale_d) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    PAGEDSERVE_WGMMA_RS_M64N128K16("bf16");
  } else {
    PAGEDSERVE_WGMMA_RS_M64N128K16("f16");
  }
}
#undef PAGEDSERVE_WGMMA_RS_M64N128K16

}  // namespace pagedserve::cuda_detail
