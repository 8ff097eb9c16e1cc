// The bf16-weight matmul on Intel AMX tiles (Sapphire Rapids and later): the compute-bound part of
// the CPU backend (batched decode, prefill). AMX multiplies bf16 by bf16 into f32; x arrives
// rounded to bf16 values (the matmul contract, matmul.h), so its bf16 packing is exact.
//
// Formulated as y^T = w * x^T so the weights are the A operand and are read in their checkpoint
// layout ([n, k] rows, 32 k per tile row) with no repacking; x^T becomes the VNNI-paired B operand,
// packed once per call. Needs k % 32 == 0; rows of w past the last multiple of 16 are left to the
// caller (matmul.cpp runs the dot kernel on them).
//
// Threads: amx_pack_x_block and amx_rows run on any thread, each call on its own output range;
// every call loads and releases its own tile configuration (tile state is per thread).
#pragma once

#include <cstddef>
#include <cstdint>

namespace pagedserve {

// True when the CPU has AMX-TILE and AMX-BF16 and the kernel granted this process the tile data
// state (arch_prctl ARCH_REQ_XCOMP_PERM, asked once). PAGEDSERVE_NO_AMX=1 in the environment
// answers false, to run the other paths on the same machine.
bool amx_bf16_usable() noexcept;

// Rows of x per packed block (one B tile's columns).
inline constexpr std::int64_t kAmxRowsPerBlock = 16;

// Elements (uint16) of the packed x of `m` rows and `k` columns.
std::size_t amx_packed_x_elements(std::int64_t m, std::int64_t k);

// Packs rows [block * 16, block * 16 + 16) of x into their VNNI panels (rows past m as zeros).
void amx_pack_x_block(const float* x,  // [m, k] f32, row stride ldx
                      std::int64_t m, std::int64_t ldx, std::int64_t k, std::int64_t block,
                      std::uint16_t* packed);  // [amx_packed_x_elements(m, k)]

// y[0:m, n_begin:n_end] = x * w[n_begin:n_end]^T for (n_end - n_begin) % 16 == 0.
void amx_rows(const std::uint16_t* packed,  // amx_pack_x_block output for every block of x
              std::int64_t m, std::int64_t k,
              const std::uint16_t* w,  // [n, k] bf16 bits
              std::int64_t n_begin, std::int64_t n_end,
              float* y,  // [m, n] f32, row stride ldy
              std::int64_t ldy);

}  // namespace pagedserve
