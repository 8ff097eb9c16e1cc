#include "core/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
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

// A spare work that counts its runs per worker and, while `hold` is set, stays inside its run
// until stop() says to return (as a long warm-up would).
struct CountingSpareWork {
  static constexpr int kMaxWorkers = 8;
  std::atomic<int> runs[kMaxWorkers] = {};
  std::atomic<int> finished[kMaxWorkers] = {};
  std::atomic<int> inside{0};
  std::atomic<int> bad_worker{0};
  std::atomic<bool> hold{true};
  ThreadPool::SpareWork work{&run, this};

  static bool run(const void* context, int worker, const ThreadPool::SpareStop& stop) {
    auto& self = *const_cast<CountingSpareWork*>(static_cast<const CountingSpareWork*>(context));
    if (worker < 1 || worker >= kMaxWorkers) {
      self.bad_worker.fetch_add(1);
      return true;
    }
    self.inside.fetch_add(1);
    self.runs[worker].fetch_add(1);
    bool stopped = false;
    while (self.hold.load() && !stopped) stopped = stop();
    self.inside.fetch_sub(1);
    if (!stopped) self.finished[worker].fetch_add(1);
    return !stopped;
  }
  int total(const std::atomic<int>* counts) const {
    int sum = 0;
    for (int w = 0; w < kMaxWorkers; ++w) sum += counts[w].load();
    return sum;
  }
};

// Waits up to ~2 s for done(); true when it came.
template <typename Done>
bool eventually(Done done) {
  for (int i = 0; i < 2000; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return done();
}

// Posts spare's work until a worker is inside it. Workers pick up spare work only while they spin
// between fan-outs (not asleep): a fan-out right before each post keeps them spinning.
bool post_until_entered(ThreadPool& pool, CountingSpareWork& spare) {
  for (int attempt = 0; attempt < 20; ++attempt) {
    pool.parallel_for(pool.size(), [](std::int64_t) {});
    pool.post_spare_work(&spare.work);
    if (eventually([&] { return spare.inside.load() > 0; })) return true;
  }
  return false;
}

TEST(ThreadPoolSpareWork, RunsOnWaitingWorkersOnlyAndEndsBeforeTheNextPostReturns) {
  ThreadPool pool(4);
  CountingSpareWork spare;
  ASSERT_TRUE(post_until_entered(pool, spare)) << "no waiting worker ran the posted work";
  // Held inside until stop(): the next post returns only once every worker has left it.
  pool.post_spare_work(nullptr);
  EXPECT_EQ(spare.inside.load(), 0);
  const int runs = spare.total(spare.runs);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(spare.total(spare.runs), runs) << "a withdrawn work ran again";
  EXPECT_EQ(spare.total(spare.finished), 0);
  EXPECT_EQ(spare.bad_worker.load(), 0) << "spare work ran on the caller or an unknown worker";
}

TEST(ThreadPoolSpareWork, AFanOutInterruptsItAndItRunsAgainUntilItEnds) {
  ThreadPool pool(3);
  CountingSpareWork spare;
  ASSERT_TRUE(post_until_entered(pool, spare));
  const int runs_before = spare.total(spare.runs);
  // The fan-out stops the runs (their stop() turns true); every task still runs exactly once.
  std::vector<std::atomic<int>> hits(7);
  pool.parallel_for(7, [&](std::int64_t i) { hits[i].fetch_add(1); });
  for (auto& hit : hits) EXPECT_EQ(hit.load(), 1);
  // After it the interrupted workers start the work over.
  EXPECT_TRUE(eventually([&] { return spare.total(spare.runs) > runs_before && spare.inside.load() > 0; }));
  // Let the runs end: a worker that finished does not run the same post again, even after a fan-out.
  spare.hold.store(false);
  EXPECT_TRUE(eventually([&] { return spare.inside.load() == 0 && spare.total(spare.finished) > 0; }));
  pool.parallel_for(pool.size(), [](std::int64_t) {});
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  for (int w = 0; w < CountingSpareWork::kMaxWorkers; ++w) EXPECT_LE(spare.finished[w].load(), 1) << "worker " << w;
  pool.post_spare_work(nullptr);
  EXPECT_EQ(spare.bad_worker.load(), 0);
}

TEST(ThreadPoolSpareWork, PostsBackToBackWhileWorkersRunThem) {
  // Posting while workers enter and leave runs (as the model does twice a layer), with fan-outs in
  // between: every post returns, tasks run once, and a withdrawn work is never entered after.
  ThreadPool pool(4);
  CountingSpareWork first, second;
  first.hold.store(false);
  for (int round = 0; round < 300; ++round) {
    pool.post_spare_work(round % 2 ? &first.work : &second.work);
    std::atomic<int> hits{0};
    pool.parallel_for(5, [&](std::int64_t) { hits.fetch_add(1); });
    ASSERT_EQ(hits.load(), 5);
  }
  pool.post_spare_work(nullptr);
  EXPECT_EQ(first.inside.load() + second.inside.load(), 0);
  EXPECT_EQ(first.bad_worker.load() + second.bad_worker.load(), 0);
}

}  // namespace
}  // namespace pagedserve
