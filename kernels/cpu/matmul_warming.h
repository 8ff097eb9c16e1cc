// Warming the pool's workers with the weights of the next matmul_groups: while they would only
// wait (ThreadPool spare work), each worker prefetches towards its L2 the first bytes of the
// weight rows it owns in those calls (matmul_partition), which it then reads from cache when
// the calls run. At batch 1 on many threads the steps between q/k/v and o_proj leave the memory
// bus and most threads idle: RoPE and the cache write run on the caller alone, and decode
// attention over one row makes fewer tasks than threads (8 of 16 on the Xeon host,
// bench/RESULTS.md).
// A plan is built by the pool's caller while it is not posted, then posted; a worker reads it
// only while posted (ThreadPool::post_spare_work waits for that to end before a new post).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <vector>

#include "core/tensor_view.h"
#include "core/thread_pool.h"

namespace pagedserve {

class MatmulWarmPlan {
 public:
  // bytes_per_thread: how much of its rows each worker prefetches at most, all calls together.
  MatmulWarmPlan(int threads, std::int64_t bytes_per_thread);
  // Its spare work points at the plan itself: neither copied nor moved.
  MatmulWarmPlan(const MatmulWarmPlan&) = delete;
  MatmulWarmPlan& operator=(const MatmulWarmPlan&) = delete;

  void clear();
  // Appends, for every thread, its own rows of matmul_group(x of m rows, these weights) on a pool of
  // the plan's threads (matmul_partition).
  void add(std::int64_t m, std::initializer_list<TensorView> weights);

  // What to post (ThreadPool::post_spare_work): worker w prefetches its spans in order.
  const ThreadPool::SpareWork& spare_work() const noexcept { return work_; }

  // Bytes of weights thread `owner` would prefetch (tests; capped at bytes_per_thread).
  std::int64_t planned_bytes(int owner) const;

 private:
  struct Span {
    const char* data;
    std::int64_t bytes;
  };
  static constexpr int kMaxSpans = 8;  // per thread: two calls of up to 4 targets

  static bool run(const void* context, int worker, const ThreadPool::SpareStop& stop);

  // Where a worker's last run stopped (its span, and the line in it): a run interrupted by a
  // fan-out resumes there. Written only by that worker while posted; reset by clear().
  struct alignas(64) Progress {
    int span = 0;
    std::int64_t line = 0;
  };

  int threads_;
  std::int64_t bytes_per_thread_;
  std::vector<Span> spans_;  // [threads, kMaxSpans]
  std::vector<int> counts_;  // [threads]
  mutable std::vector<Progress> progress_;  // [threads]
  ThreadPool::SpareWork work_;
};

}  // namespace pagedserve
