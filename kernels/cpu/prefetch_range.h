// Software prefetch of a byte range towards L1, for kernels that read a block of weights only
// after computing on the previous one (the hardware prefetcher then falls behind: the widening
// matmul paths at 5-32 rows of x stalled on each block's first reads, bench/RESULTS.md).
// An asm statement, not __builtin_prefetch: GCC 12 rates a function whose only effects are
// __builtin_prefetch calls as pure and may delete calls to it (attention_tile_simd.h). Internal
// linkage on purpose: the ISA-specific kernel files each compile their own copy, so the linker
// cannot hand an AVX2-only CPU a copy compiled for AVX-512.
#pragma once

#include <cstdint>

namespace pagedserve {
namespace {  // NOLINT: see above

// Requests every 64-byte line of [p, p + bytes), in address order. A prefetch never faults.
inline void prefetch_range_l1(const void* p, std::int64_t bytes) {
  const char* bytes_at = static_cast<const char*>(p);
  for (std::int64_t offset = 0; offset < bytes; offset += 64) {
    asm volatile("prefetcht0 %0" : : "m"(bytes_at[offset]));
  }
}

// Rows [first, min(first + rows, end)) of a row-major [*, k] matrix of T: the next block of
// weight rows, asked for while the current one computes. Nothing when first >= end.
template <typename T>
inline void prefetch_rows_l1(const T* w, std::int64_t k, std::int64_t first, std::int64_t rows, std::int64_t end) {
  const std::int64_t count = end - first < rows ? end - first : rows;
  if (count > 0) prefetch_range_l1(w + first * k, count * k * static_cast<std::int64_t>(sizeof(T)));
}

}  // namespace
}  // namespace pagedserve
