#include "kvcache/block_allocator.h"

#include <stdexcept>
#include <string>

namespace pagedserve {

BlockAllocator::BlockAllocator(int num_blocks)
    : num_blocks_(num_blocks),
      num_free_(0),
      ref_counts_(static_cast<std::size_t>(num_blocks > 0 ? num_blocks : 0), 0),
      prev_(static_cast<std::size_t>(num_blocks > 0 ? num_blocks + 1 : 1)),
      next_(static_cast<std::size_t>(num_blocks > 0 ? num_blocks + 1 : 1)) {
  if (num_blocks < 0) throw std::logic_error("BlockAllocator: negative block count");
  const std::int32_t sentinel = num_blocks_;
  prev_[sentinel] = next_[sentinel] = sentinel;
  for (std::int32_t block = 0; block < num_blocks_; ++block) link_before(block, sentinel);
}

double BlockAllocator::usage() const noexcept {
  if (num_blocks_ == 0) return 0.0;
  return static_cast<double>(num_blocks_ - num_free_) / static_cast<double>(num_blocks_);
}

std::vector<std::int32_t> BlockAllocator::allocate(int n) {
  if (!can_allocate(n)) {
    throw std::logic_error("BlockAllocator::allocate(" + std::to_string(n) + ") with " +
                           std::to_string(num_free_) + " free blocks");
  }
  std::vector<std::int32_t> blocks;
  blocks.reserve(static_cast<std::size_t>(n));
  const std::int32_t sentinel = num_blocks_;
  for (int i = 0; i < n; ++i) {
    const std::int32_t block = next_[sentinel];
    unlink(block);
    ref_counts_[block] = 1;
    blocks.push_back(block);
  }
  return blocks;
}

void BlockAllocator::share(std::int32_t block) {
  check_id(block);
  if (ref_counts_[block] == 0) unlink(block);
  ++ref_counts_[block];
}

void BlockAllocator::free(std::span<const std::int32_t> blocks, FreePosition where) {
  // Drop every reference first and roll back on a bad id, so a failed call changes nothing.
  std::vector<std::int32_t> now_free;
  for (std::size_t i = 0; i < blocks.size(); ++i) {
    const std::int32_t block = blocks[i];
    if (block < 0 || block >= num_blocks_ || ref_counts_[block] == 0) {
      for (std::size_t j = 0; j < i; ++j) ++ref_counts_[blocks[j]];
      check_id(block);
      throw std::logic_error("BlockAllocator::free: block " + std::to_string(block) + " is already free");
    }
    if (--ref_counts_[block] == 0) now_free.push_back(block);
  }
  const std::int32_t sentinel = num_blocks_;
  const std::int32_t insert_before = where == FreePosition::reuse_last ? sentinel : next_[sentinel];
  for (std::int32_t block : now_free) link_before(block, insert_before);
}

int BlockAllocator::ref_count(std::int32_t block) const {
  check_id(block);
  return ref_counts_[block];
}

std::vector<std::int32_t> BlockAllocator::free_queue() const {
  std::vector<std::int32_t> order;
  order.reserve(static_cast<std::size_t>(num_free_));
  const std::int32_t sentinel = num_blocks_;
  for (std::int32_t block = next_[sentinel]; block != sentinel; block = next_[block]) order.push_back(block);
  return order;
}

void BlockAllocator::check_id(std::int32_t block) const {
  if (block < 0 || block >= num_blocks_) {
    throw std::logic_error("BlockAllocator: block id " + std::to_string(block) + " out of range [0, " +
                           std::to_string(num_blocks_) + ")");
  }
}

void BlockAllocator::unlink(std::int32_t block) noexcept {
  next_[prev_[block]] = next_[block];
  prev_[next_[block]] = prev_[block];
  --num_free_;
}

void BlockAllocator::link_before(std::int32_t block, std::int32_t next) noexcept {
  const std::int32_t prev = prev_[next];
  prev_[block] = prev;
  next_[block] = next;
  next_[prev] = block;
  prev_[next] = block;
  ++num_free_;
}

}  // namespace pagedserve
