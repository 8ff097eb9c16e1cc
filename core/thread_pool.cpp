#include "core/thread_pool.h"

#include <algorithm>
#include <chrono>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace pagedserve {
namespace {

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#endif
}

// Spins until done() or `microseconds` pass; true when done() became true. For the first
// kPureSpinMicroseconds it only spins (a fan-out or a join usually lands within that, and a
// sched_yield in flight when it does delays the thread by the syscall); after that it yields the
// core now and then, so a thread that spins on a busy host hands its time slice to whoever is
// runnable instead of burning it.
constexpr int kPureSpinMicroseconds = 20;

template <typename Done>
bool spin_until(Done done, int microseconds) {
  const auto start = std::chrono::steady_clock::now();
  const auto deadline = start + std::chrono::microseconds(microseconds);
  const auto yield_from = start + std::chrono::microseconds(kPureSpinMicroseconds);
  for (int i = 1;; ++i) {
    if (done()) return true;
    cpu_relax();
    if (i % 64 == 0) {
      const auto now = std::chrono::steady_clock::now();
      if (now > deadline) return done();
      if (now > yield_from) std::this_thread::yield();
    }
  }
}

}  // namespace

ThreadPool::ThreadPool(int num_threads) {
  if (num_threads <= 0) num_threads = std::max(1u, std::thread::hardware_concurrency());
  workers_.reserve(static_cast<std::size_t>(num_threads - 1));
  for (int i = 1; i < num_threads; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard lock(mutex_);
    stopping_.store(true, std::memory_order_release);
  }
  wake_.notify_all();
  for (auto& worker : workers_) worker.join();
}

void ThreadPool::drain(const std::function<void(std::int64_t)>& task, std::int64_t num_tasks,
                       std::int64_t first) {
  if (first < num_tasks) task(first);
  if (num_tasks <= size()) return;  // no task past the first round
  for (std::int64_t i = next_task_.fetch_add(1, std::memory_order_relaxed); i < num_tasks;
       i = next_task_.fetch_add(1, std::memory_order_relaxed)) {
    task(i);
  }
}

void ThreadPool::parallel_for(std::int64_t num_tasks, const std::function<void(std::int64_t)>& task) {
  if (num_tasks <= 0) return;
  if (workers_.empty() || num_tasks == 1) {
    for (std::int64_t i = 0; i < num_tasks; ++i) task(i);
    return;
  }
  task_ = &task;
  num_tasks_ = num_tasks;
  next_task_.store(size(), std::memory_order_relaxed);
  busy_workers_.store(static_cast<int>(workers_.size()), std::memory_order_relaxed);
  {
    // Under the mutex so a worker between its predicate check and its sleep cannot miss it.
    std::lock_guard lock(mutex_);
    generation_.fetch_add(1, std::memory_order_release);
  }
  wake_.notify_all();
  drain(task, num_tasks, 0);
  auto all_done = [this] { return busy_workers_.load(std::memory_order_acquire) == 0; };
  if (!spin_until(all_done, kSpinMicroseconds)) {
    std::unique_lock lock(mutex_);
    done_.wait(lock, all_done);
  }
  task_ = nullptr;
}

void ThreadPool::post_spare_work(const SpareWork* work) {
  spare_.store(work, std::memory_order_seq_cst);
  const std::uint64_t replaced = spare_serial_.fetch_add(1, std::memory_order_seq_cst);
  // A worker that read `replaced` first may hold the replaced work; its stop() is true now.
  auto released = [&] { return spare_running_[replaced % 2].load(std::memory_order_seq_cst) == 0; };
  while (!spin_until(released, kSpinMicroseconds)) {
  }
}

void ThreadPool::run_spare_work(int index, std::uint64_t seen_generation, std::uint64_t& spare_done) {
  const std::uint64_t serial = spare_serial_.load(std::memory_order_seq_cst);
  std::atomic<int>& running = spare_running_[serial % 2];
  running.fetch_add(1, std::memory_order_seq_cst);
  const SpareWork* work = spare_.load(std::memory_order_seq_cst);
  // Serial unchanged after counting in: the post that replaces `work` will wait for this run
  // (with the serial changed, the work read may be newer than `serial`: start over instead).
  bool finished = false;
  if (spare_serial_.load(std::memory_order_seq_cst) == serial) {
    finished = work == nullptr || work->run(work->context, index, SpareStop(*this, seen_generation, serial));
  }
  running.fetch_sub(1, std::memory_order_seq_cst);
  if (finished) spare_done = serial;
}

void ThreadPool::worker_loop(int index) {
  std::uint64_t seen_generation = 0;
  std::uint64_t spare_done = 0;  // serial of the last post this worker ran to its end
  auto woken = [&] {
    return stopping_.load(std::memory_order_acquire) ||
           generation_.load(std::memory_order_acquire) != seen_generation;
  };
  auto spare_due = [&] { return spare_serial_.load(std::memory_order_acquire) != spare_done; };
  auto woken_or_spare_due = [&] { return woken() || spare_due(); };
  for (;;) {
    if (!woken() && spare_due()) run_spare_work(index, seen_generation, spare_done);
    if (!spin_until(woken_or_spare_due, kSpinMicroseconds)) {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, woken);
    }
    if (!woken()) continue;  // a post to run
    if (stopping_.load(std::memory_order_acquire)) return;
    seen_generation = generation_.load(std::memory_order_acquire);
    drain(*task_, num_tasks_, index);
    if (busy_workers_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      std::lock_guard lock(mutex_);  // the caller may be between its check and its sleep
      done_.notify_one();
    }
  }
}

}  // namespace pagedserve
