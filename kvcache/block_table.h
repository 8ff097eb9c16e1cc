// One sequence's map from logical pages (position / page_size) to physical pages of the KV cache.
// Token `position` of the sequence lives in slot page * page_size + offset, where
// page = pages()[position / page_size] and offset = position % page_size ("position = index into
// the sequence = slot", DESIGN.md §3).
//
// A BlockTable only records page ids; the BlockManager allocates and frees them. Owned by the
// sequence's Request; engine thread only.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace pagedserve {

class BlockTable {
 public:
  explicit BlockTable(int page_size);

  int page_size() const noexcept { return page_size_; }
  int num_pages() const noexcept { return static_cast<int>(pages_.size()); }
  // Tokens the owned pages can hold.
  int capacity_tokens() const noexcept { return num_pages() * page_size_; }
  std::span<const std::int32_t> pages() const noexcept { return pages_; }
  std::int32_t page(int logical_page) const { return pages_.at(static_cast<std::size_t>(logical_page)); }

  void append_pages(std::span<const std::int32_t> pages);
  // Forgets every page (the caller has freed them).
  void clear() noexcept { pages_.clear(); }

  // Slot of token `position`; throws std::out_of_range past capacity_tokens().
  std::int32_t slot_for(int position) const;

  // The kernel contract's block_table row: owned pages, then -1. Throws std::length_error when the
  // sequence owns more pages than the row holds.
  void export_row(std::span<std::int32_t> row /* [max_pages_per_seq] */) const;

  // Slots of positions [begin, begin + out.size()), appended in order.
  void export_slots(int begin, std::span<std::int32_t> out /* [num_positions] */) const;

  // Pages needed to hold num_tokens tokens.
  static int pages_for_tokens(int num_tokens, int page_size) noexcept {
    return num_tokens <= 0 ? 0 : (num_tokens + page_size - 1) / page_size;
  }

 private:
  int page_size_;
  std::vector<std::int32_t> pages_;  // [num_pages] physical page ids
};

}  // namespace pagedserve
