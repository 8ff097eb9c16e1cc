// Reference-counted ownership of a fixed pool of KV pages ("blocks"), pure bookkeeping: no memory
// is touched here. Free blocks wait in one queue; allocate() takes from its front, so the queue
// order is the eviction order of the prefix cache (a freed block keeps its cached contents until it
// is handed out again, see kvcache/block_manager.h).
//
// Decide first, commit last: can_allocate() never changes state and allocate() never fails after a
// yes. Misuse (allocating more than is free, freeing a free block, an id out of range) is a
// programming error and throws std::logic_error, leaving the allocator unchanged.
//
// Owned by the BlockManager; engine thread only. Every operation is O(1) per block.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace pagedserve {

// Where a block that reaches zero references joins the free queue.
enum class FreePosition : std::uint8_t {
  reuse_last,   // back: kept as long as possible (a cached block worth finding again)
  reuse_first,  // front: handed out next (nothing in it is worth keeping)
};

class BlockAllocator {
 public:
  // Blocks are 0 .. num_blocks-1, all free, queued in id order.
  explicit BlockAllocator(int num_blocks);

  int num_blocks() const noexcept { return num_blocks_; }
  int num_free() const noexcept { return num_free_; }
  bool can_allocate(int n) const noexcept { return n >= 0 && n <= num_free_; }
  // Fraction of blocks with at least one reference, in [0, 1] (the kv-usage metric).
  double usage() const noexcept;

  // Takes n blocks from the front of the free queue, each with one reference, in queue order.
  [[nodiscard]] std::vector<std::int32_t> allocate(int n);

  // Adds a reference to an allocated or free block; a free block leaves the free queue (a prefix
  // cache hit on a block nobody holds).
  void share(std::int32_t block);

  // Drops one reference from each block, in the given order; blocks reaching zero join the free
  // queue at `where`, in that order.
  void free(std::span<const std::int32_t> blocks, FreePosition where = FreePosition::reuse_last);

  int ref_count(std::int32_t block) const;
  bool is_free(std::int32_t block) const { return ref_count(block) == 0; }

  // The free queue front to back (the order allocate() would hand blocks out). O(num_free); tests.
  std::vector<std::int32_t> free_queue() const;

 private:
  void check_id(std::int32_t block) const;
  void unlink(std::int32_t block) noexcept;
  void link_before(std::int32_t block, std::int32_t next) noexcept;

  int num_blocks_;
  int num_free_;
  std::vector<int> ref_counts_;  // [num_blocks]
  // Intrusive doubly-linked free queue; index num_blocks_ is the sentinel (front = next_[sentinel]).
  std::vector<std::int32_t> prev_;  // [num_blocks + 1]
  std::vector<std::int32_t> next_;  // [num_blocks + 1]
};

}  // namespace pagedserve
