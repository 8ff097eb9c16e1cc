#include "kvcache/block_table.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <vector>

namespace pagedserve {
namespace {

using Ints = std::vector<std::int32_t>;

class BlockTablePageSizes : public ::testing::TestWithParam<int> {};

TEST_P(BlockTablePageSizes, SlotsFollowPagesAcrossBoundaries) {
  const int page_size = GetParam();
  BlockTable table(page_size);
  const Ints pages{7, 2, 9};  // physical order deliberately not logical order
  table.append_pages(pages);
  EXPECT_EQ(table.num_pages(), 3);
  EXPECT_EQ(table.capacity_tokens(), 3 * page_size);

  EXPECT_EQ(table.slot_for(0), 7 * page_size);
  EXPECT_EQ(table.slot_for(page_size - 1), 7 * page_size + page_size - 1);
  EXPECT_EQ(table.slot_for(page_size), 2 * page_size);
  EXPECT_EQ(table.slot_for(page_size + 5), 2 * page_size + 5);
  EXPECT_EQ(table.slot_for(2 * page_size - 1), 2 * page_size + page_size - 1);
  EXPECT_EQ(table.slot_for(2 * page_size), 9 * page_size);
  EXPECT_EQ(table.slot_for(3 * page_size - 1), 9 * page_size + page_size - 1);
  EXPECT_THROW((void)table.slot_for(3 * page_size), std::out_of_range);
  EXPECT_THROW((void)table.slot_for(-1), std::out_of_range);

  // A range straddling the first boundary.
  Ints slots(4);
  table.export_slots(page_size - 2, slots);
  EXPECT_EQ(slots, (Ints{7 * page_size + page_size - 2, 7 * page_size + page_size - 1, 2 * page_size,
                         2 * page_size + 1}));
  for (int position = 0; position < table.capacity_tokens(); ++position) {
    Ints one(1);
    table.export_slots(position, one);
    ASSERT_EQ(one[0], table.slot_for(position));
    ASSERT_EQ(one[0] / page_size, pages[static_cast<std::size_t>(position / page_size)]);
    ASSERT_EQ(one[0] % page_size, position % page_size);
  }
  Ints too_far(2);
  EXPECT_THROW(table.export_slots(3 * page_size - 1, too_far), std::out_of_range);
}

INSTANTIATE_TEST_SUITE_P(PageSizes, BlockTablePageSizes, ::testing::Values(16, 32, 64));

TEST(BlockTable, ExportRowPadsWithMinusOne) {
  BlockTable table(16);
  Ints row(5, 123);
  table.export_row(row);
  EXPECT_EQ(row, (Ints{-1, -1, -1, -1, -1}));

  const Ints pages{4, 0, 3};
  table.append_pages(pages);
  table.export_row(row);
  EXPECT_EQ(row, (Ints{4, 0, 3, -1, -1}));

  Ints exact(3);
  table.export_row(exact);
  EXPECT_EQ(exact, pages);
  Ints narrow(2);
  EXPECT_THROW(table.export_row(narrow), std::length_error);
}

TEST(BlockTable, GrowsAndClears) {
  BlockTable table(32);
  EXPECT_EQ(BlockTable::pages_for_tokens(0, 32), 0);
  EXPECT_EQ(BlockTable::pages_for_tokens(1, 32), 1);
  EXPECT_EQ(BlockTable::pages_for_tokens(32, 32), 1);
  EXPECT_EQ(BlockTable::pages_for_tokens(33, 32), 2);
  const Ints first{5};
  table.append_pages(first);
  EXPECT_EQ(table.slot_for(31), 5 * 32 + 31);
  const Ints second{1};
  table.append_pages(second);
  EXPECT_EQ(table.slot_for(32), 32);
  table.clear();
  EXPECT_EQ(table.num_pages(), 0);
  EXPECT_THROW((void)table.slot_for(0), std::out_of_range);
  EXPECT_THROW(BlockTable(0), std::invalid_argument);
}

}  // namespace
}  // namespace pagedserve
