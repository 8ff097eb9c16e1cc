// A fresh seed per run, printed so a failure can be replayed with PAGEDSERVE_TEST_SEED=<seed>.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <random>
#include <string>

namespace pagedserve::testing {

inline std::uint64_t fresh_seed(const std::string& test_name) {
  std::uint64_t seed;
  if (const char* fixed = std::getenv("PAGEDSERVE_TEST_SEED")) {
    seed = std::strtoull(fixed, nullptr, 10);
  } else {
    std::random_device device;
    seed = (static_cast<std::uint64_t>(device()) << 32) ^ device();
  }
  std::cout << test_name << ": seed " << seed << " (replay with PAGEDSERVE_TEST_SEED=" << seed << ")\n";
  return seed;
}

}  // namespace pagedserve::testing
