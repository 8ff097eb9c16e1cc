// How matmul_group hands its parts (row_partition.h) to the pool's threads. Thread t owns the
// contiguous parts [t * parts / threads, (t + 1) * parts / threads) and takes them front to back,
// so its weight reads stay one stream for the hardware prefetcher; a thread done with its own
// range takes the next untaken part of the ranges after it, so a slow thread's parts still get
// shared out. With one shared counter instead, a thread's next part was rarely the one after its
// last, and every part restarted the prefetch stream from a cold miss: ~0.5 us a part, a quarter
// of q/k/v's and o_proj's batch-1 time on two threads (bench/RESULTS.md).
// Every part is taken exactly once: one fetch_add on its range claims it. Made by the calling
// thread before the fan-out (the pool's fan-out publishes it); take() from any pool thread.
#pragma once

#include <atomic>
#include <cassert>
#include <cstdint>
#include <memory>

namespace pagedserve {

class PartRanges {
 public:
  PartRanges(std::int64_t parts, int threads) : threads_(threads) {
    assert(parts >= 0 && threads >= 1);
    if (threads > kInlineRanges) {
      heap_ = std::make_unique<Range[]>(static_cast<std::size_t>(threads));
      ranges_ = heap_.get();
    }
    for (int t = 0; t < threads; ++t) {
      ranges_[t].next.store(first_owned(parts, threads, t), std::memory_order_relaxed);
      ranges_[t].end = first_owned(parts, threads, t + 1);
    }
  }

  // The first of the parts thread `owner` owns, [first_owned(owner), first_owned(owner + 1)).
  static std::int64_t first_owned(std::int64_t parts, int threads, int owner) noexcept {
    return parts * owner / threads;
  }
  PartRanges(const PartRanges&) = delete;
  PartRanges& operator=(const PartRanges&) = delete;

  // The next part for the thread that owns range `owner` (< threads), or -1 when none is left.
  std::int64_t take(int owner) noexcept {
    assert(owner >= 0 && owner < threads_);
    for (int i = 0; i < threads_; ++i) {
      Range& range = ranges_[(owner + i) % threads_];
      if (range.next.load(std::memory_order_relaxed) >= range.end) continue;
      const std::int64_t part = range.next.fetch_add(1, std::memory_order_relaxed);
      if (part < range.end) return part;
    }
    return -1;
  }

 private:
  static constexpr int kInlineRanges = 32;

  // One cache line each: an owner's fetch_adds do not disturb the other ranges.
  struct alignas(64) Range {
    std::atomic<std::int64_t> next{0};
    std::int64_t end = 0;
  };

  int threads_;
  Range inline_[kInlineRanges];
  std::unique_ptr<Range[]> heap_;
  Range* ranges_ = inline_;
};

}  // namespace pagedserve
