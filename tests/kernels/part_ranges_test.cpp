// PartRanges (kernels/cpu/part_ranges.h): every part taken exactly once, whatever the thread count
// and however the takers interleave; an owner alone takes its own range front to back, then the
// ranges after it.
#include "kernels/cpu/part_ranges.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace pagedserve {
namespace {

TEST(PartRanges, AnOwnerAloneTakesItsRangeInOrderThenTheNext) {
  PartRanges ranges(10, 3);  // ranges [0, 3), [3, 6), [6, 10)
  std::vector<std::int64_t> taken;
  for (std::int64_t p = ranges.take(1); p >= 0; p = ranges.take(1)) taken.push_back(p);
  EXPECT_EQ(taken, (std::vector<std::int64_t>{3, 4, 5, 6, 7, 8, 9, 0, 1, 2}));
  EXPECT_EQ(ranges.take(0), -1);
}

TEST(PartRanges, FewerPartsThanThreadsAndNone) {
  PartRanges few(2, 5);  // three of the five ranges are empty
  std::vector<int> hits(2, 0);
  for (int owner = 0; owner < 5; ++owner) {
    const std::int64_t p = few.take(owner);
    if (p >= 0) ++hits[static_cast<std::size_t>(p)];
  }
  EXPECT_EQ(few.take(3), -1);
  EXPECT_EQ(hits, (std::vector<int>{1, 1}));
  PartRanges none(0, 4);
  EXPECT_EQ(none.take(2), -1);
}

TEST(PartRanges, ConcurrentTakersTakeEveryPartExactlyOnce) {
  // More threads than the inline ranges too (heap storage).
  for (int threads : {1, 2, 3, 7, 16, 40}) {
    for (std::int64_t parts : {std::int64_t{1}, std::int64_t{5}, std::int64_t{64}, std::int64_t{333}}) {
      PartRanges ranges(parts, threads);
      std::vector<std::atomic<int>> hits(static_cast<std::size_t>(parts));
      std::vector<std::thread> takers;
      for (int owner = 0; owner < threads; ++owner) {
        takers.emplace_back([&, owner] {
          for (std::int64_t p = ranges.take(owner); p >= 0; p = ranges.take(owner)) {
            hits[static_cast<std::size_t>(p)].fetch_add(1);
          }
        });
      }
      for (auto& taker : takers) taker.join();
      for (std::int64_t p = 0; p < parts; ++p) {
        ASSERT_EQ(hits[static_cast<std::size_t>(p)].load(), 1) << threads << " threads, part " << p << " of " << parts;
      }
    }
  }
}

}  // namespace
}  // namespace pagedserve
