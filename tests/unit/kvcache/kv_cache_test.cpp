#include "kvcache/kv_cache.h"

#include <gtest/gtest.h>

#include "core/error.h"

namespace pagedserve {
namespace {

KVCacheConfig small_config() {
  KVCacheConfig config;
  config.num_layers = 3;
  config.num_kv_heads = 2;
  config.head_dim = 8;
  config.page_size = 16;
  config.dtype = DType::bf16;
  config.device = Device::cpu;
  return config;
}

TEST(KVCache, SizesPagesFromTheBudget) {
  KVCacheConfig config = small_config();
  // K+V x 3 layers x 16 slots x 2 heads x 8 dims x 2 bytes.
  const std::size_t page_bytes = 2 * 3 * 16 * 2 * 8 * 2;
  EXPECT_EQ(KVCache::bytes_per_page(config), page_bytes);
  config.memory_budget_bytes = 5 * page_bytes + page_bytes - 1;
  KVCache cache(config);
  EXPECT_EQ(cache.num_pages(), 5);
  EXPECT_EQ(cache.page_size(), 16);
  EXPECT_EQ(cache.num_layers(), 3);

  const TensorView k0 = cache.key_cache(0);
  EXPECT_EQ(k0.rank(), 4);
  EXPECT_EQ(k0.size(0), 5);
  EXPECT_EQ(k0.size(1), 16);
  EXPECT_EQ(k0.size(2), 2);
  EXPECT_EQ(k0.size(3), 8);
  EXPECT_EQ(k0.dtype(), DType::bf16);
  EXPECT_EQ(k0.device(), Device::cpu);
  // Every layer's K and V are distinct, non-overlapping arrays.
  const char* previous_end = nullptr;
  for (int layer = 0; layer < 3; ++layer) {
    for (const TensorView& view : {cache.key_cache(layer), cache.value_cache(layer)}) {
      const char* begin = static_cast<const char*>(view.data());
      if (previous_end != nullptr) {
        EXPECT_GE(begin, previous_end);
      }
      EXPECT_EQ(view.nbytes(), 5 * page_bytes / (2 * 3));
      previous_end = begin + view.nbytes();
      // Writable end to end (ASan would catch an undersized buffer).
      static_cast<char*>(view.data())[view.nbytes() - 1] = 1;
    }
  }
  EXPECT_THROW((void)cache.key_cache(3), std::out_of_range);
}

TEST(KVCache, BudgetBelowOnePageIsASetupError) {
  KVCacheConfig config = small_config();
  config.memory_budget_bytes = KVCache::bytes_per_page(config) - 1;
  EXPECT_THROW(KVCache{config}, SetupError);
  config.memory_budget_bytes = KVCache::bytes_per_page(config);
  EXPECT_EQ(KVCache(config).num_pages(), 1);
}

TEST(KVCache, InvalidConfigIsASetupError) {
  KVCacheConfig config = small_config();
  config.memory_budget_bytes = 1 << 20;
  config.head_dim = 0;
  EXPECT_THROW(KVCache{config}, SetupError);
  config = small_config();
  config.dtype = DType::i32;
  EXPECT_THROW((void)KVCache::bytes_per_page(config), SetupError);
}

TEST(KVCache, F32UsesFourBytes) {
  KVCacheConfig config = small_config();
  config.dtype = DType::f32;
  EXPECT_EQ(KVCache::bytes_per_page(config), std::size_t{2} * 3 * 16 * 2 * 8 * 4);
}

}  // namespace
}  // namespace pagedserve
