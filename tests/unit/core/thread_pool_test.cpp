#include "core/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <vector>

namespace pagedserve {
namespace {

TEST(ThreadPool, RunsEveryTaskExactlyOnce) {
  ThreadPool pool(4);
  EXPECT_EQ(pool.size(), 4);
  for (int round = 0; round < 50; ++round) {
    const int n = 1 + round * 37;
    std::vector<std::atomic<int>> hits(n);
    pool.parallel_for(n, [&](std::int64_t i) { hits[i].fetch_add(1); });
    for (int i = 0; i < n; ++i) ASSERT_EQ(hits[i].load(), 1) << "round " << round << " task " << i;
  }
}

TEST(ThreadPool, TaskCountsAroundThePoolSizeRunEveryTaskOnce) {
  // Tasks below size() go to the thread of the same index, the rest through the shared counter:
  // counts just under, at and over one and two rounds, with uneven tasks.
  ThreadPool pool(4);
  for (int repeat = 0; repeat < 20; ++repeat) {
    for (int n = 2; n <= 13; ++n) {
      std::vector<std::atomic<int>> hits(n);
      pool.parallel_for(n, [&](std::int64_t i) {
        volatile int work = 0;
        for (int k = 0; k < (i % 3) * 1000; ++k) work = work + k;
        hits[i].fetch_add(1);
      });
      for (int i = 0; i < n; ++i) ASSERT_EQ(hits[i].load(), 1) << "n " << n << " task " << i;
    }
  }
}

TEST(ThreadPool, ZeroTasksAndSingleThread) {
  ThreadPool single(1);
  int count = 0;
  single.parallel_for(0, [&](std::int64_t) { ++count; });
  EXPECT_EQ(count, 0);
  single.parallel_for(10, [&](std::int64_t) { ++count; });
  EXPECT_EQ(count, 10);
}

}  // namespace
}  // namespace pagedserve
