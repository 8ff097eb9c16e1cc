#include "kvcache/prefix_cache.h"

#include <algorithm>
#include <stdexcept>
#include <utility>

namespace pagedserve {

namespace {

// SplitMix64's finaliser: a bijection that spreads every input bit over the output.
constexpr std::uint64_t mix64(std::uint64_t x) noexcept {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

}  // namespace

std::uint64_t default_block_hash(std::uint64_t parent_hash,
                                 std::span<const std::int32_t> page_tokens) noexcept {
  std::uint64_t h = mix64(parent_hash ^ 0x9e3779b97f4a7c15ULL);
  for (std::int32_t token : page_tokens) {
    h = mix64(h + static_cast<std::uint32_t>(token) + 0x9e3779b97f4a7c15ULL);
  }
  return mix64(h ^ page_tokens.size());
}

PrefixCache::PrefixCache(int num_blocks, int page_size, BlockHashFn hash)
    : page_size_(page_size), hash_(std::move(hash)), entries_(static_cast<std::size_t>(num_blocks)) {
  if (page_size <= 0) throw std::invalid_argument("PrefixCache: page_size must be positive");
  if (!hash_) throw std::invalid_argument("PrefixCache: empty hash function");
}

PrefixCache::Match PrefixCache::match(std::span<const std::int32_t> tokens, int max_pages) const {
  Match result;
  const int full_pages = std::min(max_pages, static_cast<int>(tokens.size()) / page_size_);
  for (int page = 0; page < full_pages; ++page) {
    const auto page_tokens =
        tokens.subspan(static_cast<std::size_t>(page) * page_size_, static_cast<std::size_t>(page_size_));
    const std::uint64_t hash = hash_(result.last.hash, page_tokens);
    const std::optional<std::int32_t> block = find(hash, result.last.content_id, page_tokens);
    if (!block) break;
    result.blocks.push_back(*block);
    result.last = PrefixLink{hash, entries_[static_cast<std::size_t>(*block)]->content_id};
  }
  return result;
}

PrefixLink PrefixCache::insert(PrefixLink parent, std::span<const std::int32_t> page_tokens,
                               std::int32_t block) {
  if (static_cast<int>(page_tokens.size()) != page_size_) {
    throw std::invalid_argument("PrefixCache::insert: only full pages are cached");
  }
  const std::uint64_t hash = hash_(parent.hash, page_tokens);
  if (const std::optional<std::int32_t> existing = find(hash, parent.content_id, page_tokens)) {
    return PrefixLink{hash, entries_[static_cast<std::size_t>(*existing)]->content_id};
  }
  std::optional<Entry>& slot = entries_.at(static_cast<std::size_t>(block));
  if (slot) throw std::logic_error("PrefixCache::insert: block is already cached with other contents");
  slot = Entry{hash, next_content_id_++, parent.content_id,
               std::vector<std::int32_t>(page_tokens.begin(), page_tokens.end())};
  by_hash_.emplace(hash, block);
  return PrefixLink{hash, slot->content_id};
}

void PrefixCache::evict(std::int32_t block) {
  std::optional<Entry>& slot = entries_.at(static_cast<std::size_t>(block));
  if (!slot) return;
  auto [first, last] = by_hash_.equal_range(slot->hash);
  for (auto it = first; it != last; ++it) {
    if (it->second == block) {
      by_hash_.erase(it);
      break;
    }
  }
  slot.reset();
}

std::optional<std::int32_t> PrefixCache::find(std::uint64_t hash, std::uint64_t parent_content_id,
                                              std::span<const std::int32_t> page_tokens) const {
  auto [first, last] = by_hash_.equal_range(hash);
  for (auto it = first; it != last; ++it) {
    const Entry& entry = *entries_[static_cast<std::size_t>(it->second)];
    if (entry.parent_content_id == parent_content_id &&
        std::equal(entry.tokens.begin(), entry.tokens.end(), page_tokens.begin(), page_tokens.end())) {
      return it->second;
    }
  }
  return std::nullopt;
}

}  // namespace pagedserve
