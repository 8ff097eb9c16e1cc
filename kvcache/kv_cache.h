// The KV storage: for every layer a K and a V array of pages on the configured device, sized from a
// memory budget at startup. Which page belongs to which sequence is the BlockManager's business;
// kernels read and write pages through block tables and slot mappings (kernels/attention.h).
//
// Owned by the engine; the engine thread (and kernels it launches) use it. Construction throws
// SetupError when the config is invalid or the budget holds no page.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/buffer.h"
#include "core/dtype.h"
#include "core/tensor_view.h"
#include "kvcache/page_copy.h"

namespace pagedserve {

struct KVCacheConfig {
  int num_layers = 0;
  int num_kv_heads = 0;
  int head_dim = 0;
  int page_size = 16;
  DType dtype = DType::bf16;
  Device device = Device::cpu;
  std::size_t memory_budget_bytes = 0;  // K and V of every layer together
};

class KVCache {
 public:
  explicit KVCache(const KVCacheConfig& config);

  int num_pages() const noexcept { return num_pages_; }
  int page_size() const noexcept { return config_.page_size; }
  int num_layers() const noexcept { return config_.num_layers; }
  const KVCacheConfig& config() const noexcept { return config_; }

  TensorView key_cache(int layer) const;    // [num_pages, page_size, num_kv_heads, head_dim]
  TensorView value_cache(int layer) const;  // [num_pages, page_size, num_kv_heads, head_dim]

  // The byte ranges `copy` moves: its slots in every layer's K and V (2 x num_layers ranges of
  // num_slots x slot bytes, on the cache's device), for the backend to copy with its own means.
  // Throws std::out_of_range on a page or slot count outside the cache.
  struct ByteRange {
    void* target = nullptr;
    const void* source = nullptr;
    std::size_t bytes = 0;
  };
  std::vector<ByteRange> copy_ranges(const PageCopy& copy) const;

  // Bytes one page costs: K and V of every layer. Throws SetupError on an invalid config.
  static std::size_t bytes_per_page(const KVCacheConfig& config);

 private:
  TensorView layer_view(int layer, int k_or_v) const;

  KVCacheConfig config_;
  int num_pages_ = 0;
  std::size_t bytes_per_layer_array_ = 0;  // one of K or V of one layer
  Buffer storage_;  // [num_layers, 2 (K, V), num_pages, page_size, num_kv_heads, head_dim]
};

}  // namespace pagedserve
