// 16-bit float storage types and their exact conversions to and from f32.
// bf16 rounds to nearest even; f16 follows IEEE 754 binary16 (subnormals, inf, NaN kept).
// Scalar and portable: vectorised kernels use their own intrinsics and are tested against these.
#pragma once

#include <bit>
#include <cstdint>
#include <type_traits>

namespace pagedserve {

struct bf16 {
  std::uint16_t bits = 0;
};

struct f16 {
  std::uint16_t bits = 0;
};

inline float to_float(bf16 value) noexcept {
  return std::bit_cast<float>(static_cast<std::uint32_t>(value.bits) << 16);
}

inline bf16 to_bf16(float value) noexcept {
  const std::uint32_t u = std::bit_cast<std::uint32_t>(value);
  if ((u & 0x7fffffffu) > 0x7f800000u) {  // NaN: keep it a quiet NaN of the same sign
    return bf16{static_cast<std::uint16_t>((u >> 16) | 0x0040u)};
  }
  const std::uint32_t rounding = 0x7fffu + ((u >> 16) & 1u);
  return bf16{static_cast<std::uint16_t>((u + rounding) >> 16)};
}

inline float to_float(f16 value) noexcept {
  const std::uint32_t h = value.bits;
  const std::uint32_t sign = (h & 0x8000u) << 16;
  const std::uint32_t exponent = (h >> 10) & 0x1fu;
  const std::uint32_t mantissa = h & 0x3ffu;
  if (exponent == 0x1f) {  // inf or NaN
    return std::bit_cast<float>(sign | 0x7f800000u | (mantissa << 13));
  }
  if (exponent == 0) {
    if (mantissa == 0) return std::bit_cast<float>(sign);
    // Subnormal: value = mantissa * 2^-24.
    const float magnitude = static_cast<float>(mantissa) * 5.9604644775390625e-8f;
    return sign ? -magnitude : magnitude;
  }
  return std::bit_cast<float>(sign | ((exponent + 112u) << 23) | (mantissa << 13));
}

inline f16 to_f16(float value) noexcept {
  const std::uint32_t u = std::bit_cast<std::uint32_t>(value);
  const std::uint16_t sign = static_cast<std::uint16_t>((u >> 16) & 0x8000u);
  const std::uint32_t magnitude = u & 0x7fffffffu;
  if (magnitude > 0x7f800000u) return f16{static_cast<std::uint16_t>(sign | 0x7e00u)};  // NaN
  if (magnitude >= 0x477ff000u) return f16{static_cast<std::uint16_t>(sign | 0x7c00u)};  // overflow -> inf
  if (magnitude < 0x38800000u) {  // below the smallest normal: round to a subnormal (or zero)
    const float scaled = std::bit_cast<float>(magnitude) * 16777216.0f;  // * 2^24
    // Round half to even in integer steps of 2^-24.
    const float floor_value = static_cast<float>(static_cast<std::uint32_t>(scaled));
    std::uint32_t q = static_cast<std::uint32_t>(floor_value);
    const float remainder = scaled - floor_value;
    if (remainder > 0.5f || (remainder == 0.5f && (q & 1u))) ++q;
    return f16{static_cast<std::uint16_t>(sign | q)};
  }
  const std::uint32_t rounding = 0xfffu + ((magnitude >> 13) & 1u);
  const std::uint32_t rebased = magnitude - (112u << 23) + rounding;
  return f16{static_cast<std::uint16_t>(sign | (rebased >> 13))};
}

// Generic element conversion used by reference code and tests.
template <typename T>
inline float load_as_float(T value) noexcept {
  if constexpr (std::is_same_v<T, float>) {
    return value;
  } else {
    return to_float(value);
  }
}

template <typename T>
inline T store_from_float(float value) noexcept {
  if constexpr (std::is_same_v<T, float>) {
    return value;
  } else if constexpr (std::is_same_v<T, bf16>) {
    return to_bf16(value);
  } else {
    return to_f16(value);
  }
}

}  // namespace pagedserve
