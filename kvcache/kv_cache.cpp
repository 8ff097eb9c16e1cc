#include "kvcache/kv_cache.h"

#include <limits>
#include <stdexcept>
#include <string>

#include "core/error.h"

namespace pagedserve {

namespace {

void require_positive(int value, const char* field) {
  if (value <= 0) {
    throw SetupError(std::string("kv cache config: ") + field,
                     "must be positive, got " + std::to_string(value));
  }
}

}  // namespace

std::size_t KVCache::bytes_per_page(const KVCacheConfig& config) {
  require_positive(config.num_layers, "num_layers");
  require_positive(config.num_kv_heads, "num_kv_heads");
  require_positive(config.head_dim, "head_dim");
  require_positive(config.page_size, "page_size");
  if (config.dtype == DType::i32) throw SetupError("kv cache config: dtype", "i32 is not a KV dtype");
  return std::size_t{2} * static_cast<std::size_t>(config.num_layers) *
         static_cast<std::size_t>(config.page_size) * static_cast<std::size_t>(config.num_kv_heads) *
         static_cast<std::size_t>(config.head_dim) * dtype_size(config.dtype);
}

KVCache::KVCache(const KVCacheConfig& config) : config_(config) {
  const std::size_t page_bytes = bytes_per_page(config);
  const std::size_t pages = config.memory_budget_bytes / page_bytes;
  if (pages < 1) {
    throw SetupError("kv cache memory budget",
                     std::to_string(config.memory_budget_bytes) + " bytes hold no page of " +
                         std::to_string(page_bytes) + " bytes (K+V for " + std::to_string(config.num_layers) +
                         " layers, page_size " + std::to_string(config.page_size) + ")");
  }
  // Page ids and slots are int32 in the kernel contract.
  const std::size_t max_pages = static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max()) /
                                static_cast<std::size_t>(config.page_size);
  num_pages_ = static_cast<int>(pages < max_pages ? pages : max_pages);
  bytes_per_layer_array_ =
      page_bytes / (2 * static_cast<std::size_t>(config.num_layers)) * static_cast<std::size_t>(num_pages_);
  storage_ = Buffer(bytes_per_layer_array_ * 2 * static_cast<std::size_t>(config.num_layers), config.device);
}

std::vector<KVCache::ByteRange> KVCache::copy_ranges(const PageCopy& copy) const {
  if (copy.source < 0 || copy.source >= num_pages_ || copy.target < 0 || copy.target >= num_pages_ ||
      copy.num_slots < 0 || copy.num_slots > config_.page_size) {
    throw std::out_of_range("KVCache: copy of " + std::to_string(copy.num_slots) + " slots from page " +
                            std::to_string(copy.source) + " to page " + std::to_string(copy.target) + " of " +
                            std::to_string(num_pages_));
  }
  const std::size_t slot_bytes = static_cast<std::size_t>(config_.num_kv_heads) *
                                 static_cast<std::size_t>(config_.head_dim) * dtype_size(config_.dtype);
  const std::size_t page_bytes = slot_bytes * static_cast<std::size_t>(config_.page_size);
  std::vector<ByteRange> ranges;
  ranges.reserve(2 * static_cast<std::size_t>(config_.num_layers));
  for (std::size_t array = 0; array < 2 * static_cast<std::size_t>(config_.num_layers); ++array) {
    char* base = static_cast<char*>(storage_.data()) + array * bytes_per_layer_array_;
    ranges.push_back({base + static_cast<std::size_t>(copy.target) * page_bytes,
                      base + static_cast<std::size_t>(copy.source) * page_bytes,
                      static_cast<std::size_t>(copy.num_slots) * slot_bytes});
  }
  return ranges;
}

TensorView KVCache::key_cache(int layer) const { return layer_view(layer, 0); }

TensorView KVCache::value_cache(int layer) const { return layer_view(layer, 1); }

TensorView KVCache::layer_view(int layer, int k_or_v) const {
  if (layer < 0 || layer >= config_.num_layers) {
    throw std::out_of_range("KVCache: layer " + std::to_string(layer) + " of " +
                            std::to_string(config_.num_layers));
  }
  char* base =
      static_cast<char*>(storage_.data()) +
      (static_cast<std::size_t>(layer) * 2 + static_cast<std::size_t>(k_or_v)) * bytes_per_layer_array_;
  return TensorView(base, config_.dtype,
                    {num_pages_, config_.page_size, config_.num_kv_heads, config_.head_dim}, config_.device);
}

}  // namespace pagedserve
