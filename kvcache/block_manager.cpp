#include "kvcache/block_manager.h"

#include <stdexcept>
#include <string>
#include <utility>

namespace pagedserve {

BlockManager::BlockManager(int num_blocks, int page_size, bool enable_prefix_caching, BlockHashFn hash)
    : page_size_(page_size), allocator_(num_blocks) {
  if (page_size <= 0) throw std::invalid_argument("BlockManager: page_size must be positive");
  if (enable_prefix_caching) prefix_cache_.emplace(num_blocks, page_size, std::move(hash));
}

CachedPrefix BlockManager::find_cached_prefix(std::span<const std::int32_t> tokens) const {
  CachedPrefix prefix;
  prefix.num_query_tokens = static_cast<int>(tokens.size());
  if (!prefix_cache_ || tokens.empty()) return prefix;
  // A hit covering every token would leave nothing to compute and no logits to sample from.
  const int max_pages = (static_cast<int>(tokens.size()) - 1) / page_size_;
  PrefixCache::Match match = prefix_cache_->match(tokens, max_pages);
  prefix.blocks = std::move(match.blocks);
  prefix.last = match.last;
  prefix.num_cached_tokens = static_cast<int>(prefix.blocks.size()) * page_size_;
  return prefix;
}

bool BlockManager::can_admit(const CachedPrefix& prefix, int num_tokens) const {
  const int new_pages =
      BlockTable::pages_for_tokens(num_tokens, page_size_) - static_cast<int>(prefix.blocks.size());
  // Hits on pages nobody holds take them out of the free queue too.
  int revived = 0;
  for (std::int32_t block : prefix.blocks) revived += allocator_.is_free(block) ? 1 : 0;
  return allocator_.can_allocate((new_pages > 0 ? new_pages : 0) + revived);
}

std::optional<PageCopy> BlockManager::admit(SequenceBlocks& seq, const CachedPrefix& prefix, int num_tokens) {
  if (seq.table.num_pages() != 0) throw std::logic_error("BlockManager::admit: sequence already holds pages");
  if (!can_admit(prefix, num_tokens)) throw std::logic_error("BlockManager::admit without room");
  // Share the hits before allocating so that allocation cannot evict them.
  for (std::int32_t block : prefix.blocks) allocator_.share(block);
  seq.table.append_pages(prefix.blocks);
  seq.num_cached_pages = static_cast<int>(prefix.blocks.size());
  seq.cache_link = prefix.last;
  grow(seq, num_tokens);
  if (prefix_cache_) {
    stats_.query_tokens += prefix.num_query_tokens;
    stats_.hit_tokens += prefix.num_cached_tokens;
  }
  if (prefix.copy_source < 0) return std::nullopt;
  return PageCopy{prefix.copy_source, seq.table.page(static_cast<int>(prefix.blocks.size())),
                  prefix.num_copied_tokens};
}

bool BlockManager::can_grow(const SequenceBlocks& seq, int num_tokens) const {
  const int new_pages = BlockTable::pages_for_tokens(num_tokens, page_size_) - seq.table.num_pages();
  return new_pages <= 0 || allocator_.can_allocate(new_pages);
}

void BlockManager::grow(SequenceBlocks& seq, int num_tokens) {
  const int new_pages = BlockTable::pages_for_tokens(num_tokens, page_size_) - seq.table.num_pages();
  if (new_pages <= 0) return;
  if (!allocator_.can_allocate(new_pages)) {
    throw std::logic_error("BlockManager::grow to " + std::to_string(num_tokens) + " tokens without room");
  }
  seq.table.append_pages(allocate(new_pages));
}

int BlockManager::max_holdable_tokens(const SequenceBlocks& seq) const {
  return (seq.table.num_pages() + allocator_.num_free()) * page_size_;
}

void BlockManager::cache_computed_pages(SequenceBlocks& seq, std::span<const std::int32_t> tokens,
                                        int num_computed_tokens) {
  if (!prefix_cache_) return;
  const int full_pages = num_computed_tokens / page_size_;
  if (full_pages > seq.table.num_pages() || num_computed_tokens > static_cast<int>(tokens.size())) {
    throw std::logic_error("BlockManager::cache_computed_pages: more computed tokens than pages or tokens");
  }
  for (int page = seq.num_cached_pages; page < full_pages; ++page) {
    const auto page_tokens =
        tokens.subspan(static_cast<std::size_t>(page) * page_size_, static_cast<std::size_t>(page_size_));
    seq.cache_link = prefix_cache_->insert(seq.cache_link, page_tokens, seq.table.page(page));
  }
  if (full_pages > seq.num_cached_pages) seq.num_cached_pages = full_pages;
}

void BlockManager::release(SequenceBlocks& seq) {
  const std::span<const std::int32_t> pages = seq.table.pages();
  // Tail first: a sequence's last pages are the least likely to be shared again. Pages outside the
  // cache hold nothing worth finding, so they are reused before any cached page.
  std::vector<std::int32_t> cached;
  std::vector<std::int32_t> uncached;
  for (auto it = pages.rbegin(); it != pages.rend(); ++it) {
    const bool is_cached = prefix_cache_ && prefix_cache_->is_cached(*it);
    (is_cached ? cached : uncached).push_back(*it);
  }
  allocator_.free(cached, FreePosition::reuse_last);
  allocator_.free(uncached, FreePosition::reuse_first);
  seq.table.clear();
  seq.num_cached_pages = 0;
  seq.cache_link = PrefixLink{};
}

std::vector<std::int32_t> BlockManager::allocate(int n) {
  std::vector<std::int32_t> blocks = allocator_.allocate(n);
  if (prefix_cache_) {
    for (std::int32_t block : blocks) prefix_cache_->evict(block);
  }
  return blocks;
}

}  // namespace pagedserve
