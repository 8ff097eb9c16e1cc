#include "kvcache/block_table.h"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace pagedserve {

BlockTable::BlockTable(int page_size) : page_size_(page_size) {
  if (page_size <= 0) throw std::invalid_argument("BlockTable: page_size must be positive");
}

void BlockTable::append_pages(std::span<const std::int32_t> pages) {
  pages_.insert(pages_.end(), pages.begin(), pages.end());
}

std::int32_t BlockTable::slot_for(int position) const {
  if (position < 0 || position >= capacity_tokens()) {
    throw std::out_of_range("BlockTable::slot_for(" + std::to_string(position) + ") with capacity " +
                            std::to_string(capacity_tokens()));
  }
  return pages_[static_cast<std::size_t>(position / page_size_)] * page_size_ + position % page_size_;
}

void BlockTable::export_row(std::span<std::int32_t> row) const {
  if (pages_.size() > row.size()) {
    throw std::length_error("BlockTable::export_row: " + std::to_string(pages_.size()) +
                            " pages do not fit a row of " + std::to_string(row.size()));
  }
  std::copy(pages_.begin(), pages_.end(), row.begin());
  std::fill(row.begin() + static_cast<std::ptrdiff_t>(pages_.size()), row.end(), -1);
}

void BlockTable::export_slots(int begin, std::span<std::int32_t> out) const {
  const int end = begin + static_cast<int>(out.size());
  if (begin < 0 || end > capacity_tokens()) {
    throw std::out_of_range("BlockTable::export_slots([" + std::to_string(begin) + ", " +
                            std::to_string(end) + ")) with capacity " + std::to_string(capacity_tokens()));
  }
  for (int position = begin; position < end; ++position) {
    out[static_cast<std::size_t>(position - begin)] =
        pages_[static_cast<std::size_t>(position / page_size_)] * page_size_ + position % page_size_;
  }
}

}  // namespace pagedserve
