#include "kernels/cpu/matmul_warming.h"

#include <algorithm>
#include <cassert>

#include "core/dtype.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/part_ranges.h"
#include "kernels/cpu/prefetch_range.h"

namespace pagedserve {
namespace {

// Lines prefetched between two polls of stop(): a fan-out waits at most this long for a warming
// worker (~0.2 us at one core's share of the bus).
constexpr std::int64_t kLinesPerPoll = 32;

}  // namespace

MatmulWarmPlan::MatmulWarmPlan(int threads, std::int64_t bytes_per_thread)
    : threads_(threads),
      bytes_per_thread_(bytes_per_thread),
      spans_(static_cast<std::size_t>(threads) * kMaxSpans),
      counts_(static_cast<std::size_t>(threads), 0),
      progress_(static_cast<std::size_t>(threads)),
      work_{&MatmulWarmPlan::run, this} {
  assert(threads >= 1 && bytes_per_thread >= 0);
}

void MatmulWarmPlan::clear() {
  std::fill(counts_.begin(), counts_.end(), 0);
  std::fill(progress_.begin(), progress_.end(), Progress{});
}

void MatmulWarmPlan::add(std::int64_t m, std::initializer_list<TensorView> weights) {
  if (m == 0) return;
  const TensorView* by_index[RowPartition::kMaxTargets];
  int num_weights = 0;
  for (const TensorView& w : weights) by_index[num_weights++] = &w;
  const RowPartition partition = matmul_partition(m, weights, threads_);
  for (int owner = 0; owner < threads_; ++owner) {
    RowSegment segments[RowPartition::kMaxTargets];
    const int count = partition.segments(PartRanges::first_owned(partition.parts(), threads_, owner),
                                         PartRanges::first_owned(partition.parts(), threads_, owner + 1), segments);
    int& spans = counts_[static_cast<std::size_t>(owner)];
    for (int s = 0; s < count && spans < kMaxSpans; ++s) {
      const TensorView& w = *by_index[segments[s].target];
      const std::int64_t row_bytes = w.size(1) * static_cast<std::int64_t>(dtype_size(w.dtype()));
      spans_[static_cast<std::size_t>(owner * kMaxSpans + spans++)] =
          Span{static_cast<const char*>(w.data()) + segments[s].n_begin * row_bytes,
               (segments[s].n_end - segments[s].n_begin) * row_bytes};
    }
  }
}

std::int64_t MatmulWarmPlan::planned_bytes(int owner) const {
  std::int64_t bytes = 0;
  for (int s = 0; s < counts_[static_cast<std::size_t>(owner)]; ++s)
    bytes += spans_[static_cast<std::size_t>(owner * kMaxSpans + s)].bytes;
  return std::min(bytes, bytes_per_thread_);
}

bool MatmulWarmPlan::run(const void* context, int worker, const ThreadPool::SpareStop& stop) {
  const auto& plan = *static_cast<const MatmulWarmPlan*>(context);
  if (worker >= plan.threads_) return true;
  Progress& progress = plan.progress_[static_cast<std::size_t>(worker)];
  std::int64_t budget = plan.bytes_per_thread_;
  for (int s = 0; s < plan.counts_[static_cast<std::size_t>(worker)] && budget > 0; ++s) {
    const Span& span = plan.spans_[static_cast<std::size_t>(worker * kMaxSpans + s)];
    const std::int64_t bytes = std::min(span.bytes, budget);
    budget -= bytes;
    if (s < progress.span) continue;  // asked for by an earlier run of this post
    // Every 64-byte line [span.data, span.data + bytes) touches, from where the last run stopped.
    const auto first_line = reinterpret_cast<std::uintptr_t>(span.data) / 64;
    const auto end_line = (reinterpret_cast<std::uintptr_t>(span.data) + static_cast<std::uintptr_t>(bytes) + 63) / 64;
    const auto lines = static_cast<std::int64_t>(end_line - first_line);
    for (std::int64_t line = s == progress.span ? progress.line : 0; line < lines; ++line) {
      if (line % kLinesPerPoll == 0 && stop()) {
        progress = Progress{s, line};
        return false;
      }
      prefetch_l2(reinterpret_cast<const void*>((first_line + static_cast<std::uintptr_t>(line)) * 64));
    }
  }
  progress = Progress{plan.counts_[static_cast<std::size_t>(worker)], 0};
  return true;
}

}  // namespace pagedserve
