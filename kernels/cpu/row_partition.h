// How matmul_group splits the weight rows of its targets (q/k/v, gate/up, or one matrix) into the
// thread pool's tasks: the rows of all targets in one index space, cut into parts of whole
// `align`-row units (so a part starts on an AMX tile pair or a panel inside its target), a part
// possibly spanning the end of one target and the start of the next. Equal parts matter on many
// threads: per-target blocks of at least 48 rows made o_proj's 896 rows 19 blocks, two rounds on
// 16 threads where one round of 56-row parts does; q/k/v's 896 + 128 + 128 rows made 25.
// Pure value type, header-only; any thread.
#pragma once

#include <algorithm>
#include <cassert>
#include <cstdint>

namespace pagedserve {

// Rows [n_begin, n_end) of target `target`'s weights.
struct RowSegment {
  int target;
  std::int64_t n_begin, n_end;
};

class RowPartition {
 public:
  static constexpr int kMaxTargets = 4;

  // rows[t]: weight rows of target t < num_targets, not all zero. At most `parts` parts (fewer
  // when there are fewer units than that), each of whole `align`-row units of the targets' rows
  // (each target padded to whole units); part sizes differ by at most one unit.
  RowPartition(const std::int64_t* rows, int num_targets, std::int64_t parts, std::int64_t align)
      : num_targets_(num_targets), align_(align) {
    assert(num_targets > 0 && num_targets <= kMaxTargets && parts > 0 && align > 0);
    offset_[0] = 0;
    for (int t = 0; t < num_targets; ++t) {
      rows_[t] = rows[t];
      offset_[t + 1] = offset_[t] + (rows[t] + align - 1) / align * align;
    }
    units_ = offset_[num_targets] / align;
    assert(units_ > 0 && "no rows to split");
    parts_ = std::min(parts, units_);
  }

  std::int64_t parts() const noexcept { return parts_; }

  // Writes the segments of part `part` (< parts()) to out, in target order; returns their count
  // (at most kMaxTargets). Every row of every target lies in exactly one segment of one part.
  int segments(std::int64_t part, RowSegment* out) const noexcept { return segments(part, part + 1, out); }

  // The same for the run of parts [first_part, end_part) (<= parts()): their rows, which follow
  // each other, as at most kMaxTargets segments.
  int segments(std::int64_t first_part, std::int64_t end_part, RowSegment* out) const noexcept {
    assert(0 <= first_part && first_part <= end_part && end_part <= parts_);
    const std::int64_t begin = unit_boundary(first_part) * align_;
    const std::int64_t end = unit_boundary(end_part) * align_;
    int count = 0;
    for (int t = 0; t < num_targets_; ++t) {
      const std::int64_t n_begin = std::max(begin, offset_[t]) - offset_[t];
      const std::int64_t n_end = std::min(end, offset_[t + 1]) - offset_[t];
      const std::int64_t clipped_end = std::min(n_end, rows_[t]);
      if (n_begin < clipped_end) out[count++] = RowSegment{t, n_begin, clipped_end};
    }
    return count;
  }

 private:
  std::int64_t unit_boundary(std::int64_t part) const noexcept { return part * units_ / parts_; }

  std::int64_t offset_[kMaxTargets + 1];  // padded start of each target in the shared index space
  std::int64_t rows_[kMaxTargets];
  int num_targets_;
  std::int64_t align_, units_ = 0, parts_ = 0;
};

// Parts for `threads` threads over `total_rows` rows: the same number per thread (so the last round
// is full), as many as keep parts of at least `min_rows` rows, between 1 and `max_per_thread`
// (several per thread so one slowed by a neighbour process does not hold up the rest).
inline std::int64_t balanced_parts(std::int64_t total_rows, int threads, std::int64_t min_rows,
                                   std::int64_t max_per_thread) {
  const std::int64_t per_thread =
      std::clamp<std::int64_t>(total_rows / (threads * min_rows), 1, max_per_thread);
  return threads * per_thread;
}

}  // namespace pagedserve
