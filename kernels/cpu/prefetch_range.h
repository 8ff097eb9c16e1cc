// Software prefetch of a byte range (its first 40 KiB towards L1, the rest towards L2), for
// kernels that read a block of weights only after computing on the previous one (the hardware
// prefetcher then falls behind: the widening matmul paths at 5-32 rows of x stalled on each
// block's first reads, bench/RESULTS.md).
// Also the one-line prefetches the attention tile loop issues (attention_tile_simd.h). Internal
// linkage on purpose: the ISA-specific kernel files each compile their own copy, so the linker
// cannot hand an AVX2-only CPU a copy compiled for AVX-512.
#pragma once

#include <cstdint>

namespace pagedserve {
namespace {  // NOLINT: see above

// Software prefetch of one cache line. Not _mm_prefetch: GCC 12 rates a function whose only
// effects are __builtin_prefetch calls as pure (local-pure-const, then modref) and deletes every
// call to it whose result is unused, so the attention loop's Prefetch::row compiled to nothing and
// the kernel ran without its per-key prefetches (decode at ~35% of the read bandwidth instead of
// ~75%). A volatile asm is a side effect the optimiser keeps. The "m" operand only names the
// address: nothing is loaded, and a prefetch never faults.
inline void prefetch_l1(const void* p) {
  asm volatile("prefetcht0 %0" : : "m"(*static_cast<const char*>(p)));
}
inline void prefetch_l2(const void* p) {
  asm volatile("prefetcht1 %0" : : "m"(*static_cast<const char*>(p)));
}

// Bytes asked for towards L1 (prefetcht0); the rest of a range goes towards L2 (prefetcht1), so a
// large block does not evict what the kernel is computing on. 40 KiB covers the largest block
// measured (4 rows of Qwen2.5-0.5B's down_proj, 38 KiB); larger blocks are not measured.
constexpr std::int64_t kPrefetchL1Bytes = 40 * 1024;

// Requests every 64-byte line that [p, p + bytes) touches, in address order. A prefetch never
// faults.
inline void prefetch_range_l1(const void* p, std::int64_t bytes) {
  if (bytes <= 0) return;
  const auto begin = reinterpret_cast<std::uintptr_t>(p);
  const std::uintptr_t end = begin + static_cast<std::uintptr_t>(bytes);
  const std::uintptr_t l1_end =
      begin + static_cast<std::uintptr_t>(bytes < kPrefetchL1Bytes ? bytes : kPrefetchL1Bytes);
  for (std::uintptr_t line = begin & ~std::uintptr_t{63}; line < end; line += 64) {
    const void* at = reinterpret_cast<const void*>(line);
    if (line < l1_end) {
      prefetch_l1(at);
    } else {
      prefetch_l2(at);
    }
  }
}

// Rows [first, min(first + rows, end)) of a row-major [*, k] matrix of T: the next block of
// weight rows, asked for while the current one computes. Nothing when first >= end.
template <typename T>
inline void prefetch_rows_l1(const T* w, std::int64_t k, std::int64_t first, std::int64_t rows,
                             std::int64_t end) {
  const std::int64_t count = end - first < rows ? end - first : rows;
  if (count > 0) prefetch_range_l1(w + first * k, count * k * static_cast<std::int64_t>(sizeof(T)));
}

}  // namespace
}  // namespace pagedserve
