#include "core/buffer.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>

#include "core/error.h"

namespace pagedserve {
namespace {

TEST(Buffer, CpuAllocationIsAlignedAndMovable) {
  Buffer buffer(1000, Device::cpu);
  ASSERT_NE(buffer.data(), nullptr);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(buffer.data()) % 64, 0u);
  std::memset(buffer.data(), 0xab, buffer.nbytes());
  Buffer moved = std::move(buffer);
  EXPECT_EQ(buffer.data(), nullptr);
  EXPECT_EQ(moved.nbytes(), 1000u);
  EXPECT_EQ(static_cast<unsigned char*>(moved.data())[999], 0xab);
}

TEST(Buffer, ViewMustFit) {
  Buffer buffer(64, Device::cpu);
  EXPECT_EQ(buffer.view(DType::f32, {4, 4}).numel(), 16);
  EXPECT_THROW((void)buffer.view(DType::f32, {5, 4}), SetupError);
}

TEST(Buffer, CopyBytesOnCpu) {
  Buffer a(16, Device::cpu), b(16, Device::cpu);
  std::memset(a.data(), 7, 16);
  copy_bytes(b.data(), Device::cpu, a.data(), Device::cpu, 16);
  EXPECT_EQ(static_cast<unsigned char*>(b.data())[15], 7);
}

}  // namespace
}  // namespace pagedserve
