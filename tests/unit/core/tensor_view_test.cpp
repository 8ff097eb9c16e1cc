#include "core/tensor_view.h"

#include <gtest/gtest.h>

#include <vector>

namespace pagedserve {
namespace {

TEST(TensorView, ContiguousStridesAndSizes) {
  std::vector<float> storage(2 * 3 * 4);
  TensorView view(storage.data(), DType::f32, {2, 3, 4});
  EXPECT_EQ(view.rank(), 3);
  EXPECT_EQ(view.numel(), 24);
  EXPECT_EQ(view.nbytes(), 96u);
  EXPECT_EQ(view.stride(0), 12);
  EXPECT_EQ(view.stride(1), 4);
  EXPECT_EQ(view.stride(2), 1);
  EXPECT_TRUE(view.is_contiguous());
}

TEST(TensorView, SliceRowsPointsAtTheRightRow) {
  std::vector<std::int32_t> storage(5 * 3);
  for (int i = 0; i < 15; ++i) storage[i] = i;
  TensorView view(storage.data(), DType::i32, {5, 3});
  TensorView rows = view.slice_rows(2, 4);
  EXPECT_EQ(rows.size(0), 2);
  EXPECT_EQ(rows.data_as<std::int32_t>()[0], 6);
  EXPECT_EQ(rows.numel(), 6);
}

TEST(TensorView, ReshapeKeepsMemory) {
  std::vector<std::uint16_t> storage(24);
  TensorView view(storage.data(), DType::bf16, {4, 6});
  TensorView reshaped = view.reshaped({2, 3, 4});
  EXPECT_EQ(reshaped.data(), view.data());
  EXPECT_EQ(reshaped.size(2), 4);
  EXPECT_EQ(reshaped.nbytes(), 48u);
}

}  // namespace
}  // namespace pagedserve
