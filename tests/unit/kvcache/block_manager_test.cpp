#include "kvcache/block_manager.h"

#include <gtest/gtest.h>

#include <numeric>
#include <stdexcept>
#include <vector>

namespace pagedserve {
namespace {

using Ints = std::vector<std::int32_t>;

Ints iota_tokens(int n, int first) {
  Ints tokens(static_cast<std::size_t>(n));
  std::iota(tokens.begin(), tokens.end(), first);
  return tokens;
}

Ints pages_of(const SequenceBlocks& seq) { return Ints(seq.table.pages().begin(), seq.table.pages().end()); }

// Admits a sequence holding all of `tokens` and marks them computed.
void admit_and_compute(BlockManager& manager, SequenceBlocks& seq, const Ints& tokens) {
  const CachedPrefix prefix = manager.find_cached_prefix(tokens);
  ASSERT_TRUE(manager.can_admit(prefix, static_cast<int>(tokens.size())));
  manager.admit(seq, prefix, static_cast<int>(tokens.size()));
  manager.cache_computed_pages(seq, tokens, static_cast<int>(tokens.size()));
}

// Admitted onto another sequence's partly filled page: the full pages are shared (one more
// reference each), the partly filled one is never shared: the new sequence gets a fresh page and
// the copy that fills it. Releasing both returns every page.
TEST(BlockManager, AdmitOntoAPartlyFilledPageCopiesIt) {
  BlockManager manager(8, 4, /*enable_prefix_caching=*/true);
  SequenceBlocks a(4);
  const Ints tokens = iota_tokens(11, 100);  // pages: 4 + 4 full, 3 in the third
  admit_and_compute(manager, a, tokens);
  ASSERT_EQ(pages_of(a), (Ints{0, 1, 2}));

  CachedPrefix prefix = manager.find_cached_prefix(tokens);
  ASSERT_EQ(prefix.num_cached_tokens, 8);
  prefix.copy_source = a.table.page(2);
  prefix.num_copied_tokens = 2;  // the new sequence computes position 10 itself
  SequenceBlocks b(4);
  ASSERT_TRUE(manager.can_admit(prefix, 11));
  const std::optional<PageCopy> copy = manager.admit(b, prefix, 11);
  ASSERT_TRUE(copy);
  EXPECT_EQ(*copy, (PageCopy{2, 3, 2}));
  EXPECT_EQ(pages_of(b), (Ints{0, 1, 3}));
  EXPECT_EQ(manager.allocator().ref_count(0), 2);
  EXPECT_EQ(manager.allocator().ref_count(1), 2);
  EXPECT_EQ(manager.allocator().ref_count(2), 1);
  EXPECT_EQ(manager.allocator().ref_count(3), 1);
  EXPECT_EQ(manager.num_free_blocks(), 4);
  SequenceBlocks c(4);
  EXPECT_FALSE(manager.admit(c, CachedPrefix{}, 1));  // no copy without a copy_source
  manager.release(a);
  manager.release(b);
  manager.release(c);
  EXPECT_EQ(manager.num_free_blocks(), 8);
  EXPECT_EQ(manager.usage(), 0.0);
}

TEST(BlockManager, AdmitsGrowsAndReleasesWithExactPages) {
  BlockManager manager(8, 4, /*enable_prefix_caching=*/false);
  SequenceBlocks seq(4);
  const Ints tokens = iota_tokens(6, 100);
  const CachedPrefix prefix = manager.find_cached_prefix(tokens);
  EXPECT_TRUE(prefix.blocks.empty());
  EXPECT_TRUE(manager.can_admit(prefix, 6));
  manager.admit(seq, prefix, 6);
  EXPECT_EQ(pages_of(seq), (Ints{0, 1}));
  EXPECT_TRUE(manager.can_grow(seq, 8));  // fits in the pages it holds
  manager.grow(seq, 8);
  EXPECT_EQ(pages_of(seq), (Ints{0, 1}));
  manager.grow(seq, 9);
  EXPECT_EQ(pages_of(seq), (Ints{0, 1, 2}));
  EXPECT_EQ(manager.max_holdable_tokens(seq), 8 * 4);
  EXPECT_FALSE(manager.can_grow(seq, 8 * 4 + 1));
  EXPECT_THROW(manager.grow(seq, 8 * 4 + 1), std::logic_error);
  EXPECT_EQ(manager.num_free_blocks(), 5);
  manager.release(seq);
  EXPECT_EQ(seq.table.num_pages(), 0);
  EXPECT_EQ(manager.num_free_blocks(), 8);
}

TEST(BlockManager, SharedPrefixIsReusedWithReferenceCounts) {
  BlockManager manager(10, 4, /*enable_prefix_caching=*/true);
  const Ints shared = iota_tokens(8, 1);  // two full pages
  Ints first = shared;
  first.insert(first.end(), {50, 51, 52});
  SequenceBlocks a(4);
  admit_and_compute(manager, a, first);
  EXPECT_EQ(pages_of(a), (Ints{0, 1, 2}));

  Ints second = shared;
  second.insert(second.end(), {60, 61, 62, 63, 64});
  const CachedPrefix prefix = manager.find_cached_prefix(second);
  EXPECT_EQ(prefix.blocks, (Ints{0, 1}));
  EXPECT_EQ(prefix.num_cached_tokens, 8);
  SequenceBlocks b(4);
  manager.admit(b, prefix, static_cast<int>(second.size()));
  EXPECT_EQ(pages_of(b), (Ints{0, 1, 3, 4}));
  EXPECT_EQ(manager.allocator().ref_count(0), 2);
  EXPECT_EQ(manager.allocator().ref_count(1), 2);
  EXPECT_EQ(manager.allocator().ref_count(2), 1);
  EXPECT_EQ(b.num_cached_pages, 2);
  EXPECT_EQ(manager.prefix_cache_stats().query_tokens, 11 + 13);
  EXPECT_EQ(manager.prefix_cache_stats().hit_tokens, 8);

  manager.release(a);
  EXPECT_EQ(manager.allocator().ref_count(0), 1);
  manager.release(b);
  EXPECT_EQ(manager.num_free_blocks(), 10);
}

TEST(BlockManager, LastPromptTokenIsAlwaysRecomputed) {
  BlockManager manager(10, 4, true);
  const Ints tokens = iota_tokens(8, 1);  // exactly two pages
  SequenceBlocks a(4);
  admit_and_compute(manager, a, tokens);
  const CachedPrefix prefix = manager.find_cached_prefix(tokens);
  EXPECT_EQ(prefix.blocks, (Ints{0}));  // not both: token 7 must be computed again
  EXPECT_EQ(prefix.num_cached_tokens, 4);
  SequenceBlocks b(4);
  manager.admit(b, prefix, 8);
  // The recomputed page is a fresh one: the cached page 1 is never written again.
  EXPECT_EQ(pages_of(b), (Ints{0, 2}));
  manager.cache_computed_pages(b, tokens, 8);
  EXPECT_FALSE(manager.prefix_cache()->is_cached(2));  // duplicate of page 1
  EXPECT_TRUE(manager.prefix_cache()->is_cached(1));
  manager.release(a);
  manager.release(b);

  const Ints one_token{7};
  EXPECT_TRUE(manager.find_cached_prefix(one_token).blocks.empty());
}

TEST(BlockManager, FreedCachedPagesAreRevivedAndCountTowardAdmission) {
  BlockManager manager(4, 4, true);
  const Ints tokens = iota_tokens(12, 1);  // three full pages
  SequenceBlocks a(4);
  admit_and_compute(manager, a, tokens);
  manager.release(a);
  EXPECT_EQ(manager.num_free_blocks(), 4);

  // 13 tokens: three cached pages (all free now) plus one new page = the whole pool.
  Ints longer = tokens;
  longer.push_back(13);
  const CachedPrefix prefix = manager.find_cached_prefix(longer);
  EXPECT_EQ(prefix.blocks, (Ints{0, 1, 2}));
  EXPECT_TRUE(manager.can_admit(prefix, 13));
  EXPECT_FALSE(manager.can_admit(prefix, 17));  // would need a fifth page
  SequenceBlocks b(4);
  manager.admit(b, prefix, 13);
  EXPECT_EQ(pages_of(b), (Ints{0, 1, 2, 3}));
  EXPECT_EQ(manager.num_free_blocks(), 0);
  manager.release(b);
}

TEST(BlockManager, EvictsTailPagesFirstAndUncachedPagesBeforeCachedOnes) {
  BlockManager manager(6, 4, true);
  // Sequence a: pages 0,1 full and cached, page 2 partial (uncached).
  const Ints tokens = iota_tokens(10, 1);
  SequenceBlocks a(4);
  admit_and_compute(manager, a, tokens);
  EXPECT_EQ(pages_of(a), (Ints{0, 1, 2}));
  manager.release(a);
  // The uncached partial page 2 goes to the front, ahead of the never-used pages 3,4,5; the cached
  // pages go to the back, tail (1) before head (0), so page 1 is evicted before page 0.
  EXPECT_EQ(manager.allocator().free_queue(), (Ints{2, 3, 4, 5, 1, 0}));

  // Taking five pages evicts page 1 from the cache, so only page 0 can still be found.
  SequenceBlocks filler(4);
  manager.admit(filler, CachedPrefix{}, 5 * 4);
  EXPECT_EQ(pages_of(filler), (Ints{2, 3, 4, 5, 1}));
  EXPECT_FALSE(manager.prefix_cache()->is_cached(1));
  EXPECT_TRUE(manager.prefix_cache()->is_cached(0));
  EXPECT_EQ(manager.find_cached_prefix(tokens).blocks, (Ints{0}));
  manager.release(filler);
  EXPECT_EQ(manager.num_free_blocks(), 6);
}

TEST(BlockManager, ComputedPagesAreCachedOnlyWhenFull) {
  BlockManager manager(6, 4, true);
  const Ints tokens = iota_tokens(9, 1);
  SequenceBlocks a(4);
  const CachedPrefix none = manager.find_cached_prefix(tokens);
  manager.admit(a, none, 9);
  manager.cache_computed_pages(a, tokens, 3);
  EXPECT_EQ(a.num_cached_pages, 0);
  manager.cache_computed_pages(a, tokens, 7);
  EXPECT_EQ(a.num_cached_pages, 1);
  manager.cache_computed_pages(a, tokens, 9);
  EXPECT_EQ(a.num_cached_pages, 2);
  EXPECT_EQ(manager.prefix_cache()->num_cached_blocks(), 2);
  EXPECT_THROW(manager.admit(a, none, 9), std::logic_error);  // already holds pages
  manager.release(a);
}

}  // namespace
}  // namespace pagedserve
