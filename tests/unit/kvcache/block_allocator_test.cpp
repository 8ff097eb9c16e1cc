#include "kvcache/block_allocator.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <deque>
#include <random>
#include <stdexcept>
#include <vector>

#include "tests/unit/kvcache/test_seed.h"

namespace pagedserve {
namespace {

using Blocks = std::vector<std::int32_t>;

TEST(BlockAllocator, HandsOutBlocksInIdOrderAndTracksReferences) {
  BlockAllocator allocator(6);
  EXPECT_EQ(allocator.num_free(), 6);
  EXPECT_DOUBLE_EQ(allocator.usage(), 0.0);
  EXPECT_TRUE(allocator.can_allocate(6));
  EXPECT_FALSE(allocator.can_allocate(7));

  EXPECT_EQ(allocator.allocate(2), (Blocks{0, 1}));
  EXPECT_EQ(allocator.allocate(3), (Blocks{2, 3, 4}));
  EXPECT_EQ(allocator.num_free(), 1);
  EXPECT_DOUBLE_EQ(allocator.usage(), 5.0 / 6.0);
  EXPECT_EQ(allocator.ref_count(3), 1);

  allocator.share(3);
  EXPECT_EQ(allocator.ref_count(3), 2);
  const Blocks freed{4, 3, 2};
  allocator.free(freed);
  EXPECT_EQ(allocator.ref_count(3), 1);  // still held by the sharer
  EXPECT_EQ(allocator.num_free(), 3);
  EXPECT_EQ(allocator.free_queue(), (Blocks{5, 4, 2}));  // freed blocks join the back, in order

  EXPECT_EQ(allocator.allocate(2), (Blocks{5, 4}));
  const Blocks last_ref{3};
  allocator.free(last_ref);
  EXPECT_EQ(allocator.free_queue(), (Blocks{2, 3}));
}

TEST(BlockAllocator, ReuseFirstPutsBlocksAtTheFrontInOrder) {
  BlockAllocator allocator(5);
  const Blocks all = allocator.allocate(5);
  const Blocks back{0, 1};
  allocator.free(back, FreePosition::reuse_last);
  const Blocks front{3, 4};
  allocator.free(front, FreePosition::reuse_first);
  EXPECT_EQ(allocator.free_queue(), (Blocks{3, 4, 0, 1}));
  EXPECT_EQ(allocator.allocate(3), (Blocks{3, 4, 0}));
}

TEST(BlockAllocator, SharingAFreeBlockTakesItOutOfTheQueue) {
  BlockAllocator allocator(4);
  const Blocks blocks = allocator.allocate(4);
  allocator.free(blocks);
  EXPECT_EQ(allocator.free_queue(), (Blocks{0, 1, 2, 3}));
  allocator.share(2);
  EXPECT_EQ(allocator.ref_count(2), 1);
  EXPECT_EQ(allocator.num_free(), 3);
  EXPECT_EQ(allocator.free_queue(), (Blocks{0, 1, 3}));
  EXPECT_EQ(allocator.allocate(3), (Blocks{0, 1, 3}));
  EXPECT_FALSE(allocator.can_allocate(1));
}

TEST(BlockAllocator, MisuseThrowsAndChangesNothing) {
  BlockAllocator allocator(3);
  EXPECT_THROW((void)allocator.allocate(4), std::logic_error);
  EXPECT_EQ(allocator.num_free(), 3);
  const Blocks held = allocator.allocate(2);  // 0, 1
  const Blocks double_free{0, 0};
  EXPECT_THROW(allocator.free(double_free), std::logic_error);
  EXPECT_EQ(allocator.ref_count(0), 1);
  const Blocks includes_free{1, 2};
  EXPECT_THROW(allocator.free(includes_free), std::logic_error);
  EXPECT_EQ(allocator.ref_count(1), 1);
  const Blocks out_of_range{0, 7};
  EXPECT_THROW(allocator.free(out_of_range), std::logic_error);
  EXPECT_EQ(allocator.ref_count(0), 1);
  EXPECT_EQ(allocator.free_queue(), (Blocks{2}));
  EXPECT_THROW(allocator.share(-1), std::logic_error);
  allocator.free(held);
  EXPECT_EQ(allocator.num_free(), 3);
}

// Thousands of random allocate/share/free calls against a plain model of the pool: reference
// counts per block and the free queue as a deque.
TEST(BlockAllocator, RandomOperationsMatchAModelOfThePool) {
  std::mt19937_64 rng(testing::fresh_seed("BlockAllocator.RandomOperationsMatchAModelOfThePool"));
  constexpr int kNumBlocks = 37;
  BlockAllocator allocator(kNumBlocks);
  std::vector<int> model_refs(kNumBlocks, 0);
  std::deque<std::int32_t> model_queue;
  for (std::int32_t b = 0; b < kNumBlocks; ++b) model_queue.push_back(b);
  std::vector<std::int32_t> held;  // one entry per reference handed out

  for (int step = 0; step < 20000; ++step) {
    const int op = static_cast<int>(rng() % 4);
    if (op == 0) {
      const int n = static_cast<int>(rng() % 6);
      const bool model_yes = n <= static_cast<int>(model_queue.size());
      ASSERT_EQ(allocator.can_allocate(n), model_yes) << "step " << step;
      if (!model_yes) continue;
      const Blocks got = allocator.allocate(n);
      ASSERT_EQ(static_cast<int>(got.size()), n);
      for (std::int32_t block : got) {
        ASSERT_EQ(block, model_queue.front()) << "step " << step;
        model_queue.pop_front();
        ASSERT_EQ(model_refs[block], 0) << "block " << block << " handed out twice";
        model_refs[block] = 1;
        held.push_back(block);
      }
    } else if (op == 1) {
      const std::int32_t block = static_cast<std::int32_t>(rng() % kNumBlocks);
      allocator.share(block);
      if (model_refs[block] == 0) model_queue.erase(std::find(model_queue.begin(), model_queue.end(), block));
      ++model_refs[block];
      held.push_back(block);
    } else if (!held.empty()) {
      const int n = 1 + static_cast<int>(rng() % std::min<std::size_t>(held.size(), 4));
      std::shuffle(held.begin(), held.end(), rng);
      Blocks to_free;
      for (int i = 0; i < n; ++i) {
        if (std::find(to_free.begin(), to_free.end(), held.back()) != to_free.end()) break;
        to_free.push_back(held.back());
        held.pop_back();
      }
      const FreePosition where = rng() % 2 ? FreePosition::reuse_first : FreePosition::reuse_last;
      allocator.free(to_free, where);
      Blocks now_free;
      for (std::int32_t block : to_free) {
        if (--model_refs[block] == 0) now_free.push_back(block);
      }
      if (where == FreePosition::reuse_last) {
        model_queue.insert(model_queue.end(), now_free.begin(), now_free.end());
      } else {
        model_queue.insert(model_queue.begin(), now_free.begin(), now_free.end());
      }
    }
    ASSERT_EQ(allocator.num_free(), static_cast<int>(model_queue.size())) << "step " << step;
  }
  for (std::int32_t block = 0; block < kNumBlocks; ++block) {
    ASSERT_EQ(allocator.ref_count(block), model_refs[block]);
  }
  EXPECT_EQ(allocator.free_queue(), Blocks(model_queue.begin(), model_queue.end()));

  allocator.free(held);
  EXPECT_EQ(allocator.num_free(), kNumBlocks);
  Blocks all = allocator.free_queue();
  std::sort(all.begin(), all.end());
  for (std::int32_t block = 0; block < kNumBlocks; ++block) EXPECT_EQ(all[block], block);
}

}  // namespace
}  // namespace pagedserve
