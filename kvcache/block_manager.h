// The scheduler's single door to KV pages: allocation, growth and release of a sequence's pages,
// with prefix-cache reuse on admission. It joins a BlockAllocator (reference counts, free queue =
// eviction order) and a PrefixCache (content index), so the scheduler never sees either.
//
// Decide first, commit last: find_cached_prefix(), can_admit(), can_grow() and
// max_holdable_tokens() never change state; admit() and grow() never fail after a yes from the
// matching question asked with no mutation in between. "No room" is only ever a `false`.
//
// Owned by the Scheduler; engine thread only.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "kvcache/block_allocator.h"
#include "kvcache/block_table.h"
#include "kvcache/page_copy.h"
#include "kvcache/prefix_cache.h"

namespace pagedserve {

// The pages one sequence holds. Lives in the sequence's Request; changed only by BlockManager.
struct SequenceBlocks {
  explicit SequenceBlocks(int page_size) : table(page_size) {}

  BlockTable table;
  int num_cached_pages = 0;  // leading pages that are in the prefix cache (hits or indexed by us)
  PrefixLink cache_link;     // chain link of page num_cached_pages - 1
};

// The reusable cached prefix of a sequence's tokens: a decision, valid until the next mutation.
struct CachedPrefix {
  std::vector<std::int32_t> blocks;  // physical pages for the leading full pages
  PrefixLink last;
  int num_cached_tokens = 0;  // blocks.size() * page_size, always < the tokens looked up
  int num_query_tokens = 0;   // tokens looked up (for the hit-rate counters)
  // A running sequence's partly filled page that continues the prefix: its num_copied_tokens
  // leading slots hold the K/V of the tokens after `blocks`. admit() gives the new sequence a fresh
  // page there and the copy to make (copy-on-write: the page is never shared). -1: none.
  std::int32_t copy_source = -1;
  int num_copied_tokens = 0;  // (0, page_size) when copy_source is set
};

// Cumulative prefix-cache counters, in tokens, counted when a sequence is admitted (and only
// while prefix caching is on).
struct PrefixCacheStats {
  std::int64_t query_tokens = 0;
  std::int64_t hit_tokens = 0;
};

class BlockManager {
 public:
  BlockManager(int num_blocks, int page_size, bool enable_prefix_caching,
               BlockHashFn hash = default_block_hash);

  int page_size() const noexcept { return page_size_; }
  int num_blocks() const noexcept { return allocator_.num_blocks(); }
  // Free pages, cached-but-unreferenced ones included (they are evictable).
  int num_free_blocks() const noexcept { return allocator_.num_free(); }
  double usage() const noexcept { return allocator_.usage(); }
  bool prefix_caching_enabled() const noexcept { return prefix_cache_.has_value(); }
  const PrefixCacheStats& prefix_cache_stats() const noexcept { return stats_; }

  // Leading full pages of `tokens` already in the cache. Never covers every token: the last one is
  // always recomputed so the model produces its logits. Empty when prefix caching is off.
  CachedPrefix find_cached_prefix(std::span<const std::int32_t> tokens) const;

  // Whether an empty sequence can take `prefix` and grow to hold num_tokens tokens
  // (num_tokens > prefix.num_cached_tokens).
  bool can_admit(const CachedPrefix& prefix, int num_tokens) const;
  // Commits that: `seq` (holding no pages) shares the prefix pages and gets new pages up to
  // num_tokens (> num_cached_tokens + num_copied_tokens). Counts prefix.num_query_tokens and
  // num_cached_tokens in the stats. Returns the copy that fills the first new page when the prefix
  // has a copy_source.
  std::optional<PageCopy> admit(SequenceBlocks& seq, const CachedPrefix& prefix, int num_tokens);

  // Whether `seq` can grow to hold num_tokens tokens; grow() commits it (no-op if it already can).
  bool can_grow(const SequenceBlocks& seq, int num_tokens) const;
  void grow(SequenceBlocks& seq, int num_tokens);
  // The most tokens `seq` could hold after growing into every free page.
  int max_holdable_tokens(const SequenceBlocks& seq) const;

  // Indexes seq's pages that became full and computed (positions < num_computed_tokens) in the
  // prefix cache; `tokens` are the sequence's tokens, at least num_computed_tokens of them.
  void cache_computed_pages(SequenceBlocks& seq, std::span<const std::int32_t> tokens,
                            int num_computed_tokens);

  // Drops seq's references, tail pages first so they are evicted first; seq ends up holding none.
  void release(SequenceBlocks& seq);

  // For tests and debugging.
  const BlockAllocator& allocator() const noexcept { return allocator_; }
  const PrefixCache* prefix_cache() const noexcept { return prefix_cache_ ? &*prefix_cache_ : nullptr; }

 private:
  // Allocates n pages, dropping the cache entries of any evicted ones.
  std::vector<std::int32_t> allocate(int n);

  int page_size_;
  BlockAllocator allocator_;
  std::optional<PrefixCache> prefix_cache_;
  PrefixCacheStats stats_;
};

}  // namespace pagedserve
