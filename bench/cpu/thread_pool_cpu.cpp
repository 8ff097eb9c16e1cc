// The thread pool's cost per fan-out and join, as a decode step meets it: a pool of N threads runs
// N tasks of --work-us microseconds of busy work each, then the caller spins --serial-us alone
// (the norms and RoPE between two matmuls), --phases times. Prints the time per phase minus the
// same work run without a pool (the pool's overhead), per repeat.
//   thread_pool_cpu [--threads 16] [--work-us 20] [--serial-us 1] [--phases 5000] [--repeats 3]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "core/thread_pool.h"

using namespace pagedserve;

namespace {

using Clock = std::chrono::steady_clock;

void busy_for(double microseconds) {
  const auto end = Clock::now() + std::chrono::nanoseconds(static_cast<long>(microseconds * 1000));
  while (Clock::now() < end) {
  }
}

double microseconds_per_phase(Clock::time_point start, int phases) {
  return std::chrono::duration<double, std::micro>(Clock::now() - start).count() / phases;
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 16;
  double work_us = 20.0;
  double serial_us = 1.0;
  int phases = 5000;
  int repeats = 3;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--help") {
      std::printf("thread_pool_cpu [--threads 16] [--work-us 20] [--serial-us 1] [--phases 5000] [--repeats 3]\n");
      return 0;
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "thread_pool_cpu: %s needs a value\n", flag.c_str());
      return 2;
    }
    const char* value = argv[++i];
    if (flag == "--threads") threads = std::atoi(value);
    else if (flag == "--work-us") work_us = std::atof(value);
    else if (flag == "--serial-us") serial_us = std::atof(value);
    else if (flag == "--phases") phases = std::atoi(value);
    else if (flag == "--repeats") repeats = std::atoi(value);
    else {
      std::fprintf(stderr, "thread_pool_cpu: unknown flag %s\n", flag.c_str());
      return 2;
    }
  }
  if (threads < 1 || phases < 1 || repeats < 1 || work_us < 0 || serial_us < 0) {
    std::fprintf(stderr, "thread_pool_cpu: --threads, --phases, --repeats >= 1; times >= 0\n");
    return 2;
  }

  auto start = Clock::now();
  for (int p = 0; p < phases; ++p) busy_for(work_us + serial_us);
  const double alone = microseconds_per_phase(start, phases);
  std::printf("threads %d, %.1f us of work per task, %.1f us serial; without a pool %.2f us per phase\n", threads,
              work_us, serial_us, alone);

  ThreadPool pool(threads);
  for (int r = 0; r < repeats; ++r) {
    start = Clock::now();
    for (int p = 0; p < phases; ++p) {
      pool.parallel_for(threads, [&](std::int64_t) { busy_for(work_us); });
      busy_for(serial_us);
    }
    const double with_pool = microseconds_per_phase(start, phases);
    std::printf("repeat %d: %.2f us per phase, overhead %.2f us\n", r + 1, with_pool, with_pool - alone);
  }
  return 0;
}
