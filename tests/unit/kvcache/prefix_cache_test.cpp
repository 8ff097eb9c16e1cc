#include "kvcache/prefix_cache.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <vector>

namespace pagedserve {
namespace {

using Ints = std::vector<std::int32_t>;

// Every page hashes alike: only the token and parent checks can tell pages apart.
std::uint64_t colliding_hash(std::uint64_t, std::span<const std::int32_t>) { return 42; }

Ints concat(std::initializer_list<Ints> parts) {
  Ints all;
  for (const Ints& part : parts) all.insert(all.end(), part.begin(), part.end());
  return all;
}

const Ints kA{1, 2, 3, 4};
const Ints kB{5, 6, 7, 8};
const Ints kC{9, 10, 11, 12};

TEST(PrefixCache, MatchesTheLongestChainOfCachedPages) {
  PrefixCache cache(8, 4);
  const PrefixLink a = cache.insert(PrefixLink{}, kA, 3);
  const PrefixLink ab = cache.insert(a, kB, 5);
  cache.insert(ab, kC, 1);
  EXPECT_EQ(cache.num_cached_blocks(), 3);

  const Ints tokens = concat({kA, kB, kC, {99}});
  PrefixCache::Match match = cache.match(tokens, 10);
  EXPECT_EQ(match.blocks, (Ints{3, 5, 1}));
  EXPECT_EQ(cache.match(tokens, 2).blocks, (Ints{3, 5}));
  EXPECT_EQ(cache.match(concat({kA, kC}), 10).blocks, (Ints{3}));  // C cached only after A,B
  EXPECT_TRUE(cache.match(concat({kB, kA}), 10).blocks.empty());
  // A partial last page never matches.
  EXPECT_EQ(cache.match(concat({kA, {5, 6, 7}}), 10).blocks, (Ints{3}));
  EXPECT_EQ(match.last.content_id, cache.match(concat({kA, kB, kC}), 10).last.content_id);
}

TEST(PrefixCache, ChainedHashDependsOnTheParent) {
  EXPECT_NE(default_block_hash(PrefixLink::kRootHash, kA), default_block_hash(123, kA));
  EXPECT_NE(default_block_hash(PrefixLink::kRootHash, kA), default_block_hash(PrefixLink::kRootHash, kB));
  const Ints swapped{2, 1, 3, 4};
  EXPECT_NE(default_block_hash(PrefixLink::kRootHash, kA),
            default_block_hash(PrefixLink::kRootHash, swapped));
}

TEST(PrefixCache, ForcedHashCollisionWithOtherTokensIsNotAHit) {
  PrefixCache cache(8, 4, colliding_hash);
  cache.insert(PrefixLink{}, kA, 0);
  EXPECT_TRUE(cache.match(kB, 1).blocks.empty());
  EXPECT_EQ(cache.match(kA, 1).blocks, (Ints{0}));
}

TEST(PrefixCache, ForcedHashCollisionWithSameTokensUnderAnotherParentIsNotAHit) {
  PrefixCache cache(8, 4, colliding_hash);
  const PrefixLink a = cache.insert(PrefixLink{}, kA, 0);
  cache.insert(PrefixLink{}, kB, 1);
  cache.insert(a, kC, 2);  // C after A
  // B matches block 1; C is cached only as the child of A, so B,C stops after one page.
  EXPECT_EQ(cache.match(concat({kB, kC}), 4).blocks, (Ints{1}));
  EXPECT_EQ(cache.match(concat({kA, kC}), 4).blocks, (Ints{0, 2}));
  // C as a first page is not the cached C either.
  EXPECT_TRUE(cache.match(kC, 4).blocks.empty());
}

TEST(PrefixCache, DuplicateInsertKeepsTheFirstBlock) {
  PrefixCache cache(8, 4);
  const PrefixLink first = cache.insert(PrefixLink{}, kA, 2);
  const PrefixLink again = cache.insert(PrefixLink{}, kA, 6);
  EXPECT_EQ(first.content_id, again.content_id);
  EXPECT_EQ(first.hash, again.hash);
  EXPECT_TRUE(cache.is_cached(2));
  EXPECT_FALSE(cache.is_cached(6));
  EXPECT_EQ(cache.num_cached_blocks(), 1);
  EXPECT_EQ(cache.match(kA, 1).blocks, (Ints{2}));
}

TEST(PrefixCache, EvictionForgetsTheBlockAndCutsItsChildrenOff) {
  PrefixCache cache(8, 4);
  const PrefixLink a = cache.insert(PrefixLink{}, kA, 0);
  cache.insert(a, kB, 1);
  cache.evict(0);
  EXPECT_FALSE(cache.is_cached(0));
  EXPECT_TRUE(cache.match(concat({kA, kB}), 4).blocks.empty());
  // Re-caching A under a new block gives a new identity; the old child stays unreachable.
  cache.insert(PrefixLink{}, kA, 4);
  EXPECT_EQ(cache.match(concat({kA, kB}), 4).blocks, (Ints{4}));
  cache.evict(5);  // never cached: no-op
  EXPECT_EQ(cache.num_cached_blocks(), 2);
}

TEST(PrefixCache, RejectsPartialPages) {
  PrefixCache cache(4, 4);
  const Ints partial{1, 2, 3};
  EXPECT_THROW(cache.insert(PrefixLink{}, partial, 0), std::invalid_argument);
}

}  // namespace
}  // namespace pagedserve
