// The reference itself, on cases small enough to check by hand, plus its argument checks.
#include "kernels/reference/paged_attention_reference.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "tests/kernels/paged_batch_fixture.h"

namespace pagedserve {
namespace {

// One kv head, one q head, head_dim 2, page_size 2; pages are physical [1, 0] for the row.
struct TinyCase {
  std::vector<float> q = {1.0f, 0.0f,   // token 0: row 0's only query (decode, position 2)
                          0.0f, 0.0f};  // token 1: padding
  // [num_pages=2, page_size=2, 1, 2]: logical positions 0,1 in physical page 1; position 2 in page 0.
  std::vector<float> k = {std::log(3.0f),
                          0.0f,
                          NAN,
                          NAN,  // page 0: position 2, then an unused slot
                          0.0f,
                          0.0f,
                          std::log(2.0f),
                          0.0f};  // page 1: positions 0, 1
  std::vector<float> v = {6.0f, 1.0f, NAN, NAN, 0.0f, 1.0f, 3.0f, 1.0f};
  std::vector<std::int32_t> table = {1, 0, -1};
  std::vector<std::int32_t> seq_lens = {3};
  std::vector<std::int32_t> qsl = {0, 1};
  std::vector<float> out = {NAN, NAN, NAN, NAN};

  PagedAttentionArgs args() {
    PagedAttentionArgs a;
    a.q = TensorView(q.data(), DType::f32, {2, 1, 1, 2});
    a.k_cache = TensorView(k.data(), DType::f32, {2, 2, 1, 2});
    a.v_cache = TensorView(v.data(), DType::f32, {2, 2, 1, 2});
    a.block_table = TensorView(table.data(), DType::i32, {1, 3});
    a.seq_lens = TensorView(seq_lens.data(), DType::i32, {1});
    a.query_start_len = TensorView(qsl.data(), DType::i32, {2});
    a.out = TensorView(out.data(), DType::f32, {2, 1, 1, 2});
    a.softmax_scale = 1.0f;
    return a;
  }
};

TEST(PagedAttentionReference, WeighsValuesBySoftmaxOfScoresThroughTheBlockTable) {
  TinyCase tiny;
  paged_attention_reference(tiny.args());
  // Scores 0, log 2, log 3 -> weights 1/6, 2/6, 3/6 over values 0, 3, 6 (first component).
  EXPECT_NEAR(tiny.out[0], (0.0 + 2.0 * 3.0 + 3.0 * 6.0) / 6.0, 1e-6);
  EXPECT_NEAR(tiny.out[1], 1.0, 1e-6);
  EXPECT_TRUE(std::isnan(tiny.out[2]) && std::isnan(tiny.out[3])) << "padding row written";
}

TEST(PagedAttentionReference, PrefillRowsAreCausal) {
  TinyCase tiny;
  tiny.q = {1.0f, 0.0f, 1.0f, 0.0f};  // two query rows at positions 1 and 2
  tiny.qsl = {0, 2};
  paged_attention_reference(tiny.args());
  // Row at position 1 sees scores 0, log 2 -> weights 1/3, 2/3 over values 0, 3.
  EXPECT_NEAR(tiny.out[0], 2.0, 1e-6);
  EXPECT_NEAR(tiny.out[2], 4.0, 1e-6);
}

TEST(PagedAttentionReference, RejectsReservedOptionsAndBadMetadata) {
  {
    TinyCase tiny;
    PagedAttentionArgs a = tiny.args();
    a.sliding_window = 4;
    EXPECT_THROW(paged_attention_reference(a), std::invalid_argument);
  }
  {
    TinyCase tiny;
    PagedAttentionArgs a = tiny.args();
    a.logit_softcap = 30.0f;
    EXPECT_THROW(paged_attention_reference(a), std::invalid_argument);
  }
  {
    TinyCase tiny;
    tiny.table = {1, -1, -1};  // position 2 has no page
    EXPECT_THROW(paged_attention_reference(tiny.args()), std::invalid_argument);
  }
  {
    TinyCase tiny;
    tiny.seq_lens = {0};  // fewer keys than queries
    EXPECT_THROW(paged_attention_reference(tiny.args()), std::invalid_argument);
  }
  {
    TinyCase tiny;
    PagedAttentionArgs a = tiny.args();
    a.out = TensorView(tiny.out.data(), DType::bf16, {2, 1, 1, 2});
    EXPECT_THROW(paged_attention_reference(a), std::invalid_argument);
  }
}

TEST(PagedAttentionReference, FixtureBatchesGiveFiniteOutputsDespiteNaNPoisoning) {
  const std::uint64_t seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  testing::PagedBatchSpec spec;
  spec.num_kv_heads = 2;
  spec.heads_per_kv = 2;
  spec.head_dim = 8;
  spec.page_size = 4;
  spec.dtype = DType::bf16;
  spec.rows = {{0, 0}, {5, 1}, {9, 0}, {7, 7}, {12, 5}};
  spec.seed = seed;
  testing::PagedBatch batch(spec);
  std::vector<std::uint8_t> out = batch.make_output();
  paged_attention_reference(batch.args(out));
  const testing::OutputComparison self = testing::compare_to_reference(batch, out, out);
  EXPECT_TRUE(self.ok(0.0)) << self.summary();
}

TEST(WriteKVCacheReference, WritesEachTokenToItsSlotAndSkipsNegativeSlots) {
  std::vector<float> k_new = {1, 2, 3, 4, 5, 6};  // [3 tokens, 1 head, 2]
  std::vector<float> v_new = {-1, -2, -3, -4, -5, -6};
  std::vector<std::int32_t> slots = {5, -1, 0};
  std::vector<std::uint16_t> k_cache(2 * 4 * 2, 0xffff), v_cache(2 * 4 * 2, 0xffff);  // bf16 [2, 4, 1, 2]
  KVCacheWriteArgs a;
  a.k_new = TensorView(k_new.data(), DType::f32, {3, 1, 2});
  a.v_new = TensorView(v_new.data(), DType::f32, {3, 1, 2});
  a.slot_mapping = TensorView(slots.data(), DType::i32, {3});
  a.k_cache = TensorView(k_cache.data(), DType::bf16, {2, 4, 1, 2});
  a.v_cache = TensorView(v_cache.data(), DType::bf16, {2, 4, 1, 2});
  write_kv_cache_reference(a);
  EXPECT_EQ(to_float(bf16{k_cache[10]}), 1.0f);  // slot 5 = page 1, offset 1
  EXPECT_EQ(to_float(bf16{k_cache[11]}), 2.0f);
  EXPECT_EQ(to_float(bf16{v_cache[0]}), -5.0f);  // slot 0
  EXPECT_EQ(to_float(bf16{v_cache[1]}), -6.0f);
  int untouched = 0;
  for (std::uint16_t bits : k_cache) untouched += bits == 0xffff;
  EXPECT_EQ(untouched, 12);
  slots[1] = 8;  // past the cache
  EXPECT_THROW(write_kv_cache_reference(a), std::invalid_argument);
}

}  // namespace
}  // namespace pagedserve
