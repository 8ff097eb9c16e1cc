// RowPartition (kernels/cpu/row_partition.h): every row of every target in exactly one segment,
// parts on whole units inside their targets, parts of near-equal size, runs of parts; balanced_parts.
#include "kernels/cpu/row_partition.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <vector>

namespace pagedserve {
namespace {

struct Case {
  std::vector<std::int64_t> rows;
  std::int64_t parts, align;
};

// Checks the partition's promises for one case; returns the largest part in rows.
std::int64_t check_partition(const Case& c) {
  const RowPartition partition(c.rows.data(), static_cast<int>(c.rows.size()), c.parts, c.align);
  std::int64_t padded_units = 0;
  for (std::int64_t n : c.rows) padded_units += (n + c.align - 1) / c.align;
  EXPECT_EQ(partition.parts(), std::min(c.parts, padded_units));
  std::vector<std::vector<int>> seen(c.rows.size());
  for (std::size_t t = 0; t < c.rows.size(); ++t) seen[t].assign(static_cast<std::size_t>(c.rows[t]), 0);
  std::int64_t largest = 0;
  for (std::int64_t p = 0; p < partition.parts(); ++p) {
    RowSegment segments[RowPartition::kMaxTargets];
    const int count = partition.segments(p, segments);
    EXPECT_LE(count, static_cast<int>(c.rows.size()));
    std::int64_t part_rows = 0;
    for (int s = 0; s < count; ++s) {
      const RowSegment& seg = segments[s];
      EXPECT_LT(seg.n_begin, seg.n_end);
      EXPECT_EQ(seg.n_begin % c.align, 0) << "part " << p << " starts off a unit";
      EXPECT_LE(seg.n_end, c.rows[static_cast<std::size_t>(seg.target)]);
      if (s > 0) {
        EXPECT_GT(seg.target, segments[s - 1].target);
      }
      for (std::int64_t n = seg.n_begin; n < seg.n_end; ++n)
        ++seen[static_cast<std::size_t>(seg.target)][static_cast<std::size_t>(n)];
      part_rows += seg.n_end - seg.n_begin;
    }
    largest = std::max(largest, part_rows);
  }
  for (std::size_t t = 0; t < c.rows.size(); ++t)
    for (std::size_t n = 0; n < seen[t].size(); ++n)
      EXPECT_EQ(seen[t][n], 1) << "target " << t << " row " << n;
  // A run of parts [p0, p1) is the rows of its parts, each target's rows joined into one segment.
  for (std::int64_t p0 = 0; p0 <= partition.parts(); p0 += 1 + partition.parts() / 5) {
    for (std::int64_t p1 = p0; p1 <= partition.parts(); p1 += 1 + partition.parts() / 4) {
      std::vector<std::int64_t> first(c.rows.size(), -1), last(c.rows.size(), -1);
      for (std::int64_t p = p0; p < p1; ++p) {
        RowSegment segments[RowPartition::kMaxTargets];
        const int count = partition.segments(p, segments);
        for (int s = 0; s < count; ++s) {
          const auto t = static_cast<std::size_t>(segments[s].target);
          if (first[t] < 0) first[t] = segments[s].n_begin;
          EXPECT_TRUE(last[t] < 0 || last[t] == segments[s].n_begin) << "parts of a target do not follow each other";
          last[t] = segments[s].n_end;
        }
      }
      RowSegment run[RowPartition::kMaxTargets];
      const int count = partition.segments(p0, p1, run);
      int expected = 0;
      for (std::size_t t = 0; t < c.rows.size(); ++t) {
        if (first[t] < 0) continue;
        EXPECT_LT(expected, count) << "parts " << p0 << ".." << p1;
        if (expected >= count) break;
        EXPECT_EQ(run[expected].target, static_cast<int>(t));
        EXPECT_EQ(run[expected].n_begin, first[t]);
        EXPECT_EQ(run[expected].n_end, last[t]);
        ++expected;
      }
      EXPECT_EQ(count, expected) << "parts " << p0 << ".." << p1;
    }
  }
  // No part is more than one unit above an equal share of the padded units.
  const std::int64_t share_units = (padded_units + partition.parts() - 1) / partition.parts();
  EXPECT_LE(largest, share_units * c.align);
  return largest;
}

TEST(RowPartition, ModelShapesSplitIntoOneRoundOnSixteenThreads) {
  // Qwen2.5-0.5B at 16 threads: q/k/v, o_proj, down: one part per thread, none above its share.
  const std::int64_t parts_qkv = balanced_parts(896 + 128 + 128, 16, 48, 8);
  EXPECT_EQ(parts_qkv, 16);
  EXPECT_EQ(check_partition({{896, 128, 128}, parts_qkv, 1}), 72);
  EXPECT_EQ(check_partition({{896}, balanced_parts(896, 16, 48, 8), 1}), 56);
  // gate/up on 2 threads: eight parts per thread.
  EXPECT_EQ(balanced_parts(4864 * 2, 2, 48, 8), 16);
  EXPECT_EQ(check_partition({{4864, 4864}, 16, 1}), 608);
  // AMX / panel: whole 32-row units.
  EXPECT_EQ(check_partition({{896}, 16, 32}), 64);
}

TEST(RowPartition, OddTargetsEveryAlignmentAndMorePartsThanUnits) {
  check_partition({{130, 13, 300}, 6, 1});
  check_partition({{130, 13, 300}, 6, 32});
  check_partition({{13}, 16, 32});  // one unit: one part
  check_partition({{0, 5, 0, 7}, 3, 1});
  check_partition({{1}, 1, 1});
  std::mt19937 rng(12345);
  std::uniform_int_distribution<std::int64_t> rows(0, 500), parts(1, 140), aligns(1, 40);
  std::uniform_int_distribution<int> targets(1, RowPartition::kMaxTargets);
  for (int trial = 0; trial < 300; ++trial) {
    Case c;
    c.rows.resize(static_cast<std::size_t>(targets(rng)));
    std::int64_t total = 0;
    for (auto& n : c.rows) total += n = rows(rng);
    if (total == 0) c.rows[0] = 1;
    c.parts = parts(rng);
    c.align = aligns(rng);
    check_partition(c);
  }
}

TEST(RowPartition, BalancedPartsAreWholeRoundsWithinTheLimits) {
  EXPECT_EQ(balanced_parts(10, 16, 48, 8), 16);        // fewer rows than one part per thread: 1 each
  EXPECT_EQ(balanced_parts(151936, 2, 48, 8), 16);     // at most 8 per thread
  EXPECT_EQ(balanced_parts(48 * 2 * 3, 2, 48, 8), 6);  // 3 per thread keep 48 rows each
}

}  // namespace
}  // namespace pagedserve
