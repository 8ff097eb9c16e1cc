// A fixed pool of worker threads for CPU kernels. One caller at a time runs a parallel_for
// (the engine thread, or a test); the caller works too, so a pool of N uses N threads in all.
// Thread i (the caller is 0) runs task i first; the tasks past the first round are handed out
// dynamically (an atomic counter), so uneven tasks balance themselves.
// Between parallel_fors the workers (and the caller, waiting for them) spin for a short while
// (kSpinMicroseconds) before they sleep on a condition variable: a decode step makes ~150
// parallel_fors milliseconds apart, and a futex wake-up per fan-out cost several percent of a
// batch-1 step (bench/RESULTS.md). Idle pools sleep.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace pagedserve {

class ThreadPool {
 public:
  // num_threads <= 0 means one per hardware core.
  explicit ThreadPool(int num_threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const noexcept { return static_cast<int>(workers_.size()) + 1; }

  // Runs task(i) for every i in [0, num_tasks) and returns when all are done. Not reentrant:
  // a task must not call parallel_for on the same pool. Exceptions from tasks are not allowed.
  void parallel_for(std::int64_t num_tasks, const std::function<void(std::int64_t)>& task);

  // Spare work: what the workers do while they wait for the next fan-out. While the caller runs
  // serial steps, or a fan-out has fewer tasks than threads, the workers only spin; a posted
  // SpareWork has them warm their caches meanwhile with the weights their next tasks read
  // (kernels/cpu/matmul_warming.h). Each worker runs it from its loop between fan-outs; a fan-out
  // interrupts it (stop() turns true) and the worker runs it again after that fan-out, until one
  // run reaches its end; the next post interrupts it for good. So a run may be cut anywhere and
  // run again (prefetches may). Never on the caller (thread 0), nor on workers asleep (an idle
  // pool).
  class SpareStop;
  struct SpareWork {
    // Runs on worker `worker` (1 .. size() - 1); true when it reached its end, false when it
    // returned early because stop() turned true.
    bool (*run)(const void* context, int worker, const SpareStop& stop);
    const void* context;
  };
  // Posts `work` (nullptr: none) in place of the last post, and returns once no worker still runs
  // the last one: what that one reads may change after this returns. `work` and its context must
  // stay as they are until the next post. Caller only, between fan-outs.
  void post_spare_work(const SpareWork* work);

 private:
  void worker_loop(int index);
  // Runs the posted spare work once on worker `index`, whose last fan-out was `seen_generation`;
  // sets spare_done to the post's serial when the run reached its end.
  void run_spare_work(int index, std::uint64_t seen_generation, std::uint64_t& spare_done);
  // Runs task `first` (this thread's own task of the first round) if it exists, then takes
  // tasks from next_task_ until none are left.
  void drain(const std::function<void(std::int64_t)>& task, std::int64_t num_tasks, std::int64_t first);

  static constexpr int kSpinMicroseconds = 100;
  static constexpr std::size_t kCacheLine = 64;

  std::vector<std::thread> workers_;
  std::mutex mutex_;  // the sleeping side of generation_ / busy_workers_ (with wake_ and done_)
  std::condition_variable wake_;
  std::condition_variable done_;
  // task_ and num_tasks_ are written by the caller before it bumps generation_ (release) and read
  // by workers after they see the new generation (acquire). Each group below has a cache line of
  // its own: spinning workers read generation_ while the others' fetch_adds hit next_task_ and
  // busy_workers_, and on one line every such write invalidates every spinner's copy (16 threads
  // of a Xeon paid ~4.4 us per fan-out and join, bench/RESULTS.md).
  alignas(kCacheLine) const std::function<void(std::int64_t)>* task_ = nullptr;
  std::int64_t num_tasks_ = 0;
  std::atomic<std::uint64_t> generation_{0};
  std::atomic<bool> stopping_{false};
  // Tasks [0, size()) go to the threads of the same index (no shared counter at the start of a
  // fan-out, where every thread would hit it at once); the rest are taken from here.
  alignas(kCacheLine) std::atomic<std::int64_t> next_task_{0};
  alignas(kCacheLine) std::atomic<int> busy_workers_{0};
  // The posted spare work and its post's serial (post_spare_work). A worker counts itself in
  // spare_running_[serial % 2] (the serial it read first) while it holds the work's pointer, and
  // a post waits until nobody is counted under the serial it replaces.
  alignas(kCacheLine) std::atomic<const SpareWork*> spare_{nullptr};
  std::atomic<std::uint64_t> spare_serial_{0};
  alignas(kCacheLine) std::atomic<int> spare_running_[2] = {0, 0};
};

// What a spare work polls (every few hundred nanoseconds of work) to know it must return: a
// fan-out, a new post, or the pool stopping.
class ThreadPool::SpareStop {
 public:
  bool operator()() const noexcept {
    return pool_.generation_.load(std::memory_order_acquire) != generation_ ||
           pool_.spare_serial_.load(std::memory_order_acquire) != serial_ ||
           pool_.stopping_.load(std::memory_order_acquire);
  }

 private:
  friend class ThreadPool;
  SpareStop(const ThreadPool& pool, std::uint64_t generation, std::uint64_t serial)
      : pool_(pool), generation_(generation), serial_(serial) {}

  const ThreadPool& pool_;
  std::uint64_t generation_, serial_;
};

}  // namespace pagedserve
