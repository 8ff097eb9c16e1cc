#include "core/half.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

namespace pagedserve {
namespace {

TEST(Bf16, RoundTripsEveryBf16Value) {
  for (std::uint32_t bits = 0; bits <= 0xffff; ++bits) {
    const bf16 value{static_cast<std::uint16_t>(bits)};
    const float f = to_float(value);
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(to_float(to_bf16(f))));
      continue;
    }
    EXPECT_EQ(to_bf16(f).bits, value.bits) << bits;
  }
}

TEST(Bf16, RoundsToNearestEven) {
  // 1 + 2^-8 is exactly halfway between 1 and 1 + 2^-7: ties go to the even mantissa (1.0).
  EXPECT_EQ(to_float(to_bf16(1.0f + 0x1p-8f)), 1.0f);
  // 1 + 3 * 2^-8 is halfway between 1 + 2^-7 (odd) and 1 + 2^-6 (even).
  EXPECT_EQ(to_float(to_bf16(1.0f + 3 * 0x1p-8f)), 1.0f + 0x1p-6f);
  EXPECT_EQ(to_float(to_bf16(1.0f + 0x1p-8f + 0x1p-20f)), 1.0f + 0x1p-7f);
}

TEST(F16, RoundTripsEveryF16Value) {
  for (std::uint32_t bits = 0; bits <= 0xffff; ++bits) {
    const f16 value{static_cast<std::uint16_t>(bits)};
    const float f = to_float(value);
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(to_float(to_f16(f))));
      continue;
    }
    EXPECT_EQ(to_f16(f).bits, value.bits) << bits;
  }
}

TEST(F16, KnownValuesAndRounding) {
  EXPECT_EQ(to_f16(1.0f).bits, 0x3c00);
  EXPECT_EQ(to_f16(-2.0f).bits, 0xc000);
  EXPECT_EQ(to_f16(65504.0f).bits, 0x7bff);
  EXPECT_EQ(to_f16(70000.0f).bits, 0x7c00);
  EXPECT_EQ(to_f16(std::numeric_limits<float>::infinity()).bits, 0x7c00);
  EXPECT_EQ(to_f16(0x1p-24f).bits, 0x0001);   // smallest subnormal
  EXPECT_EQ(to_f16(0x1p-25f).bits, 0x0000);   // halfway to zero: ties to even
  EXPECT_EQ(to_f16(0x3p-25f).bits, 0x0002);   // halfway between 1 and 2 subnormal steps: to even
  EXPECT_EQ(to_f16(1.0f + 0x1p-11f).bits, 0x3c00);  // tie -> even
  EXPECT_EQ(to_f16(1.0f + 0x3p-11f).bits, 0x3c02);  // tie -> even (up)
}

TEST(F16, MatchesNearestOnRandomFloats) {
  std::uint32_t state = 12345;
  for (int i = 0; i < 100000; ++i) {
    state = state * 1664525u + 1013904223u;
    const float x = std::ldexp(static_cast<float>(state >> 8) / 16777216.0f - 0.5f, (int(state) % 30) - 15);
    const float y = to_float(to_f16(x));
    // |x - y| must be at most half an f16 ulp at y's scale.
    const float ulp = std::ldexp(1.0f, std::max(std::ilogb(std::fabs(y) > 0 ? y : 1e-30f), -14) - 10);
    EXPECT_LE(std::fabs(x - y), ulp * 0.5f + 1e-30f) << x;
  }
}

}  // namespace
}  // namespace pagedserve
