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

 private:
  void worker_loop(int index);
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
};

}  // namespace pagedserve
