// An open-addressing hash table from a pair of token ids to its merge (rank and result). BPE
// looks a pair up for every adjacent symbol pair it considers, so this lookup is the hottest
// loop of encoding; a node-based std::unordered_map spent most of its time in cache misses.
// Immutable after construction; any thread may call find() concurrently.
#pragma once

#include <cstdint>
#include <vector>

namespace pagedserve {

class BpeMergeTable {
 public:
  struct Merge {
    std::int32_t rank;
    std::int32_t merged_id;
  };

  explicit BpeMergeTable(std::size_t expected_entries);

  // Keeps the first entry for a pair (the best-ranked when inserted in rank order).
  void insert(std::int32_t left, std::int32_t right, Merge merge);
  const Merge* find(std::int32_t left, std::int32_t right) const {
    const std::uint64_t key = pack(left, right);
    for (std::size_t slot = home(key);; slot = (slot + 1) & mask_) {
      const Entry& e = entries_[slot];
      if (e.key == key) return &e.merge;
      if (e.key == kEmpty) return nullptr;
    }
  }

 private:
  // Ids are non-negative, so no real pair packs to all ones.
  static constexpr std::uint64_t kEmpty = ~std::uint64_t{0};
  struct Entry {
    std::uint64_t key = kEmpty;
    Merge merge{};
  };
  static std::uint64_t pack(std::int32_t left, std::int32_t right) {
    return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(left)) << 32) |
           static_cast<std::uint32_t>(right);
  }
  std::size_t home(std::uint64_t key) const {
    return static_cast<std::size_t>((key * 0x9E3779B97F4A7C15ull) >> shift_);
  }

  std::vector<Entry> entries_;
  std::size_t mask_ = 0;
  int shift_ = 64;
};

}  // namespace pagedserve
