#include "tokenizer/bpe_merge_table.h"

namespace pagedserve {

BpeMergeTable::BpeMergeTable(std::size_t expected_entries) {
  // At most ~70% full keeps linear probing short.
  int bits = 4;
  while ((std::size_t{1} << bits) * 7 / 10 < expected_entries + 1) ++bits;
  entries_.resize(std::size_t{1} << bits);
  mask_ = entries_.size() - 1;
  shift_ = 64 - bits;
}

void BpeMergeTable::insert(std::int32_t left, std::int32_t right, Merge merge) {
  const std::uint64_t key = pack(left, right);
  for (std::size_t slot = home(key);; slot = (slot + 1) & mask_) {
    Entry& e = entries_[slot];
    if (e.key == key) return;
    if (e.key == kEmpty) {
      e.key = key;
      e.merge = merge;
      return;
    }
  }
}

}  // namespace pagedserve
