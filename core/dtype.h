// Element types and devices shared by every layer. Plain values; any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace pagedserve {

enum class DType : std::uint8_t { f32, bf16, f16, i32 };

enum class Device : std::uint8_t { cpu, cuda };

constexpr std::size_t dtype_size(DType dtype) noexcept {
  switch (dtype) {
    case DType::f32:
    case DType::i32:
      return 4;
    case DType::bf16:
    case DType::f16:
      return 2;
  }
  return 0;
}

constexpr std::string_view dtype_name(DType dtype) noexcept {
  switch (dtype) {
    case DType::f32:
      return "f32";
    case DType::bf16:
      return "bf16";
    case DType::f16:
      return "f16";
    case DType::i32:
      return "i32";
  }
  return "?";
}

constexpr std::string_view device_name(Device device) noexcept {
  return device == Device::cpu ? "cpu" : "cuda";
}

}  // namespace pagedserve
