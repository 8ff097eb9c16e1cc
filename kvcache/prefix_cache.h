// Content index of full, computed KV pages so that a new sequence starting with the same tokens
// reuses them instead of recomputing (automatic prefix caching).
//
// Each full page is keyed by a 64-bit hash chained from the previous page's hash and its own token
// ids. A hash only finds candidates: a hit is confirmed by comparing the page's stored token ids
// and the identity of its parent entry (`content_id`, never reused), so a chain of confirmed
// entries matches the whole prefix exactly, whatever the hash collides on.
//
// Only pages that are full and computed are indexed, and their owners never write them again.
// Eviction order is the BlockAllocator's free-queue order; the BlockManager calls evict() when a
// page is handed out for new contents. Owned by the BlockManager; engine thread only.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

namespace pagedserve {

// Hash of one full page given its parent's hash; injectable so tests can force collisions.
using BlockHashFn =
    std::function<std::uint64_t(std::uint64_t parent_hash, std::span<const std::int32_t> page_tokens)>;

// A well-mixed 64-bit chained hash (the default).
std::uint64_t default_block_hash(std::uint64_t parent_hash,
                                 std::span<const std::int32_t> page_tokens) noexcept;

// Where a chain of cached pages ends: the last page's hash and entry identity. The default value
// is the empty prefix (the parent of a sequence's first page).
struct PrefixLink {
  static constexpr std::uint64_t kRootHash = 0x6a09e667f3bcc908ULL;
  std::uint64_t hash = kRootHash;
  std::uint64_t content_id = 0;  // 0 = empty prefix; entries are numbered from 1
};

class PrefixCache {
 public:
  PrefixCache(int num_blocks, int page_size, BlockHashFn hash = default_block_hash);

  struct Match {
    std::vector<std::int32_t> blocks;  // cached pages for the leading full pages, in order
    PrefixLink last;                   // link of the last matched page (root when none)
  };

  // Longest run of cached pages equal to tokens' leading full pages, at most max_pages of them.
  // Pure.
  Match match(std::span<const std::int32_t> tokens, int max_pages) const;

  // Indexes `block`, a full computed page holding page_tokens whose parent is `parent`, and returns
  // the link to chain the next page from. When an equal entry already exists (another sequence
  // computed the same page), nothing is added and that entry's link is returned.
  PrefixLink insert(PrefixLink parent, std::span<const std::int32_t> page_tokens, std::int32_t block);

  // Forgets block's entry, if any (the page is about to be overwritten).
  void evict(std::int32_t block);

  bool is_cached(std::int32_t block) const {
    return entries_.at(static_cast<std::size_t>(block)).has_value();
  }
  int num_cached_blocks() const noexcept { return static_cast<int>(by_hash_.size()); }
  int page_size() const noexcept { return page_size_; }

 private:
  struct Entry {
    std::uint64_t hash;
    std::uint64_t content_id;
    std::uint64_t parent_content_id;
    std::vector<std::int32_t> tokens;  // [page_size]
  };

  // The cached block equal to (parent, page_tokens) under `hash`, if any.
  std::optional<std::int32_t> find(std::uint64_t hash, std::uint64_t parent_content_id,
                                   std::span<const std::int32_t> page_tokens) const;

  int page_size_;
  BlockHashFn hash_;
  std::uint64_t next_content_id_ = 1;
  std::vector<std::optional<Entry>> entries_;                     // [num_blocks]
  std::unordered_multimap<std::uint64_t, std::int32_t> by_hash_;  // hash -> block
};

}  // namespace pagedserve
