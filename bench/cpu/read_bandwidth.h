// Measures the machine's read bandwidth the way a decode step reads weights: every thread of the
// pool streams its own part of a buffer much larger than the last-level cache. Bench only.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/buffer.h"
#include "core/thread_pool.h"

namespace pagedserve {

// Best of `repeats` passes over `bytes` bytes, in bytes per second.
inline double measure_read_bandwidth(ThreadPool& pool, std::size_t bytes = std::size_t{1} << 30,
                                     int repeats = 5) {
  Buffer buffer(bytes, Device::cpu);
  std::memset(buffer.data(), 1, bytes);
  const std::uint64_t* words = static_cast<const std::uint64_t*>(buffer.data());
  const std::int64_t num_words = static_cast<std::int64_t>(bytes / 8);
  const std::int64_t num_chunks = static_cast<std::int64_t>(pool.size()) * 16;
  std::vector<std::uint64_t> sinks(static_cast<std::size_t>(num_chunks));
  double best = 0;
  for (int r = 0; r < repeats; ++r) {
    const auto start = std::chrono::steady_clock::now();
    pool.parallel_for(num_chunks, [&](std::int64_t chunk) {
      const std::int64_t begin = num_words * chunk / num_chunks;
      const std::int64_t end = num_words * (chunk + 1) / num_chunks;
      std::uint64_t a = 0, b = 0, c = 0, d = 0;
      for (std::int64_t i = begin; i + 4 <= end; i += 4) {
        a += words[i];
        b += words[i + 1];
        c += words[i + 2];
        d += words[i + 3];
      }
      sinks[static_cast<std::size_t>(chunk)] = a + b + c + d;
    });
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    best = std::max(best, static_cast<double>(bytes) / seconds);
  }
  volatile std::uint64_t keep = 0;
  for (std::uint64_t s : sinks) keep = keep + s;
  return best;
}

}  // namespace pagedserve
