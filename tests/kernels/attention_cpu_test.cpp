// CPU decode/prefill attention and the K/V cache write against kernels/reference, on fresh random
// NaN-poisoned paged batches (tests/kernels/paged_batch_fixture.h). Each test prints its seed;
// PAGEDSERVE_TEST_SEED=<n> replays one.
#include "kernels/cpu/attention_cpu.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "core/dtype.h"
#include "core/half.h"
#include "core/tensor_view.h"
#include "core/thread_pool.h"
#include "kernels/reference/paged_attention_reference.h"
#include "tests/kernels/paged_batch_fixture.h"

namespace pagedserve {
namespace {

using testing::PagedBatch;
using testing::PagedBatchSpec;
using testing::PagedRowSpec;

std::uint64_t fresh_seed() {
  std::uint64_t seed = std::random_device{}();
  if (const char* fixed = std::getenv("PAGEDSERVE_TEST_SEED")) seed = std::strtoull(fixed, nullptr, 10);
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::cout << "[ seed     ] " << info->test_suite_name() << "." << info->name() << " " << seed << std::endl;
  return seed;
}

double tolerance(DType dtype) { return dtype == DType::f32 ? 1e-5 : 1e-2; }

enum class Kernel { decode, prefill };

void expect_matches_reference(const PagedBatchSpec& spec, Kernel kernel, ThreadPool& pool,
                              AttentionPath path = AttentionPath::automatic) {
  SCOPED_TRACE(testing::describe(spec));
  PagedBatch batch(spec);
  std::vector<std::uint8_t> expected = batch.make_output();
  std::vector<std::uint8_t> actual = batch.make_output();
  paged_attention_reference(batch.args(expected));
  if (kernel == Kernel::decode) {
    decode_attention(batch.args(actual), pool, path);
  } else {
    prefill_attention(batch.args(actual), pool, path);
  }
  const testing::OutputComparison result = testing::compare_to_reference(batch, actual, expected);
  EXPECT_TRUE(result.ok(tolerance(spec.dtype))) << result.summary();
}

// Lengths around page edges, plus short random ones; `rng` draws from the test's seed.
std::vector<PagedRowSpec> decode_rows(int page_size, int long_len, std::mt19937_64& rng) {
  std::uniform_int_distribution<int> short_len(1, 200);
  std::vector<PagedRowSpec> rows = {{0, 0},
                                    {1, 1},
                                    {page_size - 1, 1},
                                    {page_size, 1},
                                    {0, 0},
                                    {page_size + 1, 1},
                                    {short_len(rng), 1},
                                    {short_len(rng), 0},  // live K/V but no query this step: never read
                                    {long_len, 1},
                                    {0, 0}};
  std::shuffle(rows.begin(), rows.end(), rng);
  return rows;
}

std::vector<PagedRowSpec> prefill_rows(int page_size, std::mt19937_64& rng) {
  std::uniform_int_distribution<int> len(2, 90);
  const int q = len(rng);
  std::vector<PagedRowSpec> rows = {{0, 0},
                                    {1, 1},                          // prefill of one token
                                    {page_size - 1, page_size - 1},  // no context
                                    {page_size, page_size},
                                    {page_size + 1, page_size + 1},
                                    {37, 1},                         // a decode row in a mixed batch
                                    {40, 3},                         // few rows: a masked small block
                                    {q + page_size + 3, q},          // with context
                                    {2 * page_size + 5, page_size},  // context ends mid-page
                                    {0, 0},
                                    {1200 + len(rng), 23}};  // thousands of context
  std::shuffle(rows.begin(), rows.end(), rng);
  return rows;
}

struct HeadShape {
  int num_kv_heads, heads_per_kv, head_dim;
};

// GQA 32/8/128 is the main case; the others cover head_dim 64/80/96/256 and group sizes 1-8
// (14/2/64 is Qwen2.5-0.5B's, a group of 7: the AVX-512 loop splits it into blocks of 4, 2 and 1).
const HeadShape kShapes[] = {{8, 4, 128}, {2, 4, 64},  {2, 4, 80}, {1, 4, 96},  {1, 4, 256},
                             {3, 1, 128}, {2, 8, 128}, {2, 7, 64}, {1, 6, 128}, {1, 5, 80},
                             {1, 3, 64},  {2, 2, 96}};
const DType kDtypes[] = {DType::f32, DType::bf16, DType::f16};
const int kPageSizes[] = {16, 32, 64};

TEST(DecodeAttentionCpu, MatchesReferenceOnRaggedBatches) {
  const std::uint64_t seed = fresh_seed();
  std::mt19937_64 rng(seed);
  ThreadPool pool(2);
  int case_index = 0;
  for (const HeadShape& shape : kShapes) {
    for (DType dtype : kDtypes) {
      PagedBatchSpec spec;
      spec.num_kv_heads = shape.num_kv_heads;
      spec.heads_per_kv = shape.heads_per_kv;
      spec.head_dim = shape.head_dim;
      spec.dtype = dtype;
      spec.page_size = kPageSizes[case_index++ % 3];
      spec.rows = decode_rows(spec.page_size, 2000 + static_cast<int>(rng() % 1500), rng);
      spec.seed = rng();
      expect_matches_reference(spec, Kernel::decode, pool);
    }
  }
}

TEST(DecodeAttentionCpu, SplitsFewLongSequencesAndMergesThem) {
  const std::uint64_t seed = fresh_seed();
  std::mt19937_64 rng(seed);
  for (int threads : {1, 2, 5}) {
    ThreadPool pool(threads);
    for (DType dtype : kDtypes) {
      PagedBatchSpec spec;
      spec.num_kv_heads = 1;  // one row x one head: only K/V splits can spread the work
      spec.heads_per_kv = 8;
      spec.head_dim = 128;
      spec.dtype = dtype;
      spec.page_size = kPageSizes[rng() % 3];
      spec.rows = {{0, 0}, {3000 + static_cast<int>(rng() % 3000), 1}, {0, 0}};
      spec.seed = rng();
      expect_matches_reference(spec, Kernel::decode, pool);
    }
  }
}

// One short row on many threads (batch 1 on a 16-core host): from 256 keys the row is cut into
// splits down to one tile of keys, so whole one-tile splits, a last split of a single key and
// rows too short to split all meet the reference.
TEST(DecodeAttentionCpu, SplitsOneShortRowAcrossManyThreads) {
  const std::uint64_t seed = fresh_seed();
  std::mt19937_64 rng(seed);
  ThreadPool pool(16);
  for (DType dtype : kDtypes) {
    for (int len : {1, 200, 256, 257, 300 + static_cast<int>(rng() % 800)}) {
      PagedBatchSpec spec;
      spec.num_kv_heads = 2;
      spec.heads_per_kv = 7;
      spec.head_dim = 64;
      spec.dtype = dtype;
      spec.page_size = kPageSizes[rng() % 3];
      spec.rows = {{len, 1}};
      spec.seed = rng();
      expect_matches_reference(spec, Kernel::decode, pool);
    }
  }
}

TEST(PrefillAttentionCpu, MatchesReferenceOnMixedBatches) {
  const std::uint64_t seed = fresh_seed();
  std::mt19937_64 rng(seed);
  ThreadPool pool(2);
  int case_index = 0;
  for (const HeadShape& shape : kShapes) {
    for (DType dtype : kDtypes) {
      PagedBatchSpec spec;
      spec.num_kv_heads = std::min(shape.num_kv_heads, 2);  // the reference is slow: fewer heads
      spec.heads_per_kv = shape.heads_per_kv;
      spec.head_dim = shape.head_dim;
      spec.dtype = dtype;
      spec.page_size = kPageSizes[case_index++ % 3];
      spec.rows = prefill_rows(spec.page_size, rng);
      spec.seed = rng();
      expect_matches_reference(spec, Kernel::prefill, pool);
    }
  }
}

TEST(PrefillAttentionCpu, LongPromptWithoutContextAndGqa32x8) {
  const std::uint64_t seed = fresh_seed();
  std::mt19937_64 rng(seed);
  ThreadPool pool(2);
  PagedBatchSpec spec;  // 32/8/128 defaults
  spec.dtype = DType::bf16;
  spec.page_size = 16;
  spec.rows = {{0, 0}, {150 + static_cast<int>(rng() % 60), 150}, {1, 1}};
  spec.seed = rng();
  expect_matches_reference(spec, Kernel::prefill, pool);

  spec.num_kv_heads = 1;
  spec.heads_per_kv = 2;
  spec.head_dim = 64;
  spec.dtype = DType::f32;
  spec.page_size = 64;
  spec.rows = {{1000 + static_cast<int>(rng() % 200), 1000}};  // a thousand-token prompt, many Q tiles
  spec.seed = rng();
  expect_matches_reference(spec, Kernel::prefill, pool);
}

// The automatic path is the widest the CPU has (AVX-512 here); the AVX2 and portable loops run
// on other CPUs and must hold too.
TEST(AttentionCpu, NarrowerPathsMatchReference) {
  const std::uint64_t seed = fresh_seed();
  std::mt19937_64 rng(seed);
  ThreadPool pool(2);
  for (AttentionPath path : {AttentionPath::avx2, AttentionPath::portable}) {
    SCOPED_TRACE(path == AttentionPath::avx2 ? "avx2" : "portable");
    for (DType dtype : kDtypes) {
      for (const HeadShape& shape :
           {HeadShape{2, 4, 80}, HeadShape{1, 8, 128}, HeadShape{2, 1, 64}, HeadShape{2, 7, 64}}) {
        PagedBatchSpec spec;
        spec.num_kv_heads = shape.num_kv_heads;
        spec.heads_per_kv = shape.heads_per_kv;
        spec.head_dim = shape.head_dim;
        spec.dtype = dtype;
        spec.page_size = kPageSizes[rng() % 3];
        spec.rows = decode_rows(spec.page_size, 700, rng);
        spec.seed = rng();
        expect_matches_reference(spec, Kernel::decode, pool, path);
        spec.num_kv_heads = 1;
        spec.rows = prefill_rows(spec.page_size, rng);
        spec.seed = rng();
        expect_matches_reference(spec, Kernel::prefill, pool, path);
      }
    }
  }
  // head_dim not a multiple of 16: the automatic path falls back to the portable loop.
  PagedBatchSpec spec;
  spec.num_kv_heads = 2;
  spec.heads_per_kv = 3;
  spec.head_dim = 40;
  spec.dtype = DType::bf16;
  spec.page_size = 32;
  spec.rows = decode_rows(spec.page_size, 300, rng);
  spec.seed = rng();
  expect_matches_reference(spec, Kernel::decode, pool);
}

TEST(AttentionCpu, DecodeAndPrefillAgreeWhenEveryRowHasOneQuery) {
  const std::uint64_t seed = fresh_seed();
  std::mt19937_64 rng(seed);
  ThreadPool pool(2);
  for (DType dtype : kDtypes) {
    PagedBatchSpec spec;
    spec.dtype = dtype;
    spec.page_size = 32;
    spec.rows = {{0, 0}, {1, 1}, {31, 1}, {4000, 1}, {0, 0}, {33, 1}, {32, 1}, {900, 1}};
    spec.seed = rng();
    PagedBatch batch(spec);
    std::vector<std::uint8_t> decoded = batch.make_output();
    std::vector<std::uint8_t> prefilled = batch.make_output();
    decode_attention(batch.args(decoded), pool);
    prefill_attention(batch.args(prefilled), pool);
    const testing::OutputComparison result = testing::compare_to_reference(batch, decoded, prefilled);
    EXPECT_TRUE(result.ok(tolerance(dtype))) << testing::describe(spec) << ": " << result.summary();
  }
}

TEST(AttentionCpu, RejectsBadArguments) {
  ThreadPool pool(2);
  PagedBatchSpec spec;
  spec.num_kv_heads = 1;
  spec.heads_per_kv = 2;
  spec.head_dim = 16;
  spec.page_size = 16;
  spec.rows = {{20, 1}, {5, 2}};
  spec.seed = 7;
  PagedBatch batch(spec);
  std::vector<std::uint8_t> out = batch.make_output();
  EXPECT_THROW(decode_attention(batch.args(out), pool), std::invalid_argument) << "a row with q_len 2";
  EXPECT_NO_THROW(prefill_attention(batch.args(out), pool));
  PagedAttentionArgs args = batch.args(out);
  args.sliding_window = 128;
  EXPECT_THROW(prefill_attention(args, pool), std::invalid_argument);
  args = batch.args(out);
  args.logit_softcap = 50.0f;
  EXPECT_THROW(prefill_attention(args, pool), std::invalid_argument);
  args = batch.args(out);
  args.out = TensorView(out.data(), DType::bf16, {batch.num_tokens(), 1, 2, 16});
  EXPECT_THROW(prefill_attention(args, pool), std::invalid_argument);
  // A needed page missing from the block table.
  std::vector<std::int32_t> table = batch.block_table();
  table[1] = -1;  // row 0's second page (positions 16..19)
  args = batch.args(out);
  args.block_table = TensorView(table.data(), DType::i32, {2, batch.max_pages_per_seq()});
  EXPECT_THROW(prefill_attention(args, pool), std::invalid_argument);
}

// Scatter random rows through a random slot mapping (with padding slots) and compare the caches
// with the reference write, bit for bit, for same-dtype copies and f32 -> bf16/f16 conversions.
TEST(WriteKVCacheCpu, MatchesReferenceThroughSlotMapping) {
  const std::uint64_t seed = fresh_seed();
  std::mt19937_64 rng(seed);
  ThreadPool pool(2);
  const std::int64_t pages = 37, page_size = 16, heads = 4, head_dim = 64, tokens = 300;
  for (auto [src_dtype, cache_dtype] :
       {std::pair{DType::f32, DType::f32}, std::pair{DType::bf16, DType::bf16},
        std::pair{DType::f16, DType::f16}, std::pair{DType::f32, DType::bf16},
        std::pair{DType::f32, DType::f16}}) {
    SCOPED_TRACE(std::string(dtype_name(src_dtype)) + " -> " + std::string(dtype_name(cache_dtype)));
    std::vector<std::int32_t> all_slots(static_cast<std::size_t>(pages * page_size));
    std::iota(all_slots.begin(), all_slots.end(), 0);
    std::shuffle(all_slots.begin(), all_slots.end(), rng);
    std::vector<std::int32_t> slots(all_slots.begin(), all_slots.begin() + tokens);
    for (int i = 0; i < 20; ++i) slots[rng() % tokens] = -1;
    const std::size_t new_elements = static_cast<std::size_t>(tokens * heads * head_dim);
    const std::size_t cache_elements = static_cast<std::size_t>(pages * page_size * heads * head_dim);
    std::vector<std::uint8_t> k_new(new_elements * dtype_size(src_dtype)), v_new(k_new.size());
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (std::size_t i = 0; i < new_elements; ++i) {
      testing::store_float(k_new.data(), src_dtype, i, normal(rng));
      testing::store_float(v_new.data(), src_dtype, i, normal(rng));
    }
    std::vector<std::uint8_t> caches[4];  // k, v for the kernel; k, v for the reference
    for (auto& cache : caches) {
      cache.resize(cache_elements * dtype_size(cache_dtype));
      testing::fill_nan(cache.data(), cache_dtype, cache_elements);
    }
    auto make_args = [&](std::vector<std::uint8_t>& k_cache, std::vector<std::uint8_t>& v_cache) {
      KVCacheWriteArgs a;
      a.k_new = TensorView(k_new.data(), src_dtype, {tokens, heads, head_dim});
      a.v_new = TensorView(v_new.data(), src_dtype, {tokens, heads, head_dim});
      a.slot_mapping = TensorView(slots.data(), DType::i32, {tokens});
      a.k_cache = TensorView(k_cache.data(), cache_dtype, {pages, page_size, heads, head_dim});
      a.v_cache = TensorView(v_cache.data(), cache_dtype, {pages, page_size, heads, head_dim});
      return a;
    };
    write_kv_cache(make_args(caches[0], caches[1]), pool);
    write_kv_cache_reference(make_args(caches[2], caches[3]));
    EXPECT_EQ(caches[0], caches[2]);
    EXPECT_EQ(caches[1], caches[3]);
  }
}

// The write and the attention agree on "slot = page * page_size + position % page_size": write a
// prompt's K/V through the slot mapping built from its block table, then attend over it.
TEST(WriteKVCacheCpu, WrittenTokensAreWhatAttentionReads) {
  const std::uint64_t seed = fresh_seed();
  std::mt19937_64 rng(seed);
  ThreadPool pool(2);
  PagedBatchSpec spec;
  spec.num_kv_heads = 2;
  spec.heads_per_kv = 4;
  spec.head_dim = 64;
  spec.page_size = 16;
  spec.dtype = DType::bf16;
  spec.rows = {{0, 0}, {70, 70}};
  spec.seed = rng();
  PagedBatch batch(spec);
  std::vector<std::uint8_t> expected = batch.make_output();
  paged_attention_reference(batch.args(expected));

  // Copy the K/V the batch holds for row 1 into an all-NaN cache with the same block table.
  const std::int64_t kv_row = spec.num_kv_heads * spec.head_dim;
  const std::int64_t tokens = 70;
  std::vector<std::uint16_t> k_new(static_cast<std::size_t>(tokens * kv_row)), v_new(k_new.size());
  std::vector<std::int32_t> slots(static_cast<std::size_t>(tokens));
  const std::int32_t* table_row = batch.block_table().data() + batch.max_pages_per_seq();
  for (std::int64_t position = 0; position < tokens; ++position) {
    slots[position] = table_row[position / spec.page_size] * spec.page_size + position % spec.page_size;
    std::memcpy(&k_new[position * kv_row], batch.k_cache().data() + slots[position] * kv_row * 2, kv_row * 2);
    std::memcpy(&v_new[position * kv_row], batch.v_cache().data() + slots[position] * kv_row * 2, kv_row * 2);
  }
  std::vector<std::uint16_t> k_cache(batch.k_cache().size() / 2, 0x7fc0), v_cache(k_cache.size(), 0x7fc0);
  KVCacheWriteArgs write;
  write.k_new = TensorView(k_new.data(), DType::bf16, {tokens, spec.num_kv_heads, spec.head_dim});
  write.v_new = TensorView(v_new.data(), DType::bf16, {tokens, spec.num_kv_heads, spec.head_dim});
  write.slot_mapping = TensorView(slots.data(), DType::i32, {tokens});
  write.k_cache = TensorView(k_cache.data(), DType::bf16,
                             {batch.num_pages(), spec.page_size, spec.num_kv_heads, spec.head_dim});
  write.v_cache = TensorView(v_cache.data(), DType::bf16,
                             {batch.num_pages(), spec.page_size, spec.num_kv_heads, spec.head_dim});
  write_kv_cache(write, pool);

  std::vector<std::uint8_t> actual = batch.make_output();
  PagedAttentionArgs args = batch.args(actual);
  args.k_cache = write.k_cache;
  args.v_cache = write.v_cache;
  prefill_attention(args, pool);
  const testing::OutputComparison result = testing::compare_to_reference(batch, actual, expected);
  EXPECT_TRUE(result.ok(1e-2)) << result.summary();
}

}  // namespace
}  // namespace pagedserve
