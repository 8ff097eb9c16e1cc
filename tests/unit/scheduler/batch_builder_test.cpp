#include "scheduler/batch_builder.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <vector>

#include "tests/unit/scheduler/fake_engine.h"

namespace pagedserve {
namespace {

using Ints = std::vector<std::int32_t>;

TEST(BatchBuilder, FlattensDecodesThenPrefillsWithExactMetadata) {
  SchedulerConfig config;
  config.max_num_seqs = 4;
  config.max_num_batched_tokens = 9;
  config.page_size = 4;
  config.max_model_len = 32;
  config.enable_prefix_caching = false;
  Scheduler scheduler(config, 16);
  scheduler.add(testing::make_request(1, testing::token_range(5, 10), 4));   // pages 0,1
  scheduler.add(testing::make_request(2, testing::token_range(11, 50), 4));  // pages 2.. (chunked)
  StepPlan plan = scheduler.schedule();                                      // 1: [0,5) samples; 2: [0,4)
  const std::vector<std::int32_t> first{99};
  (void)scheduler.commit(plan, first);

  plan = scheduler.schedule();  // decode 1 at position 5; then 2: [4, 11), the rest of the budget
  ASSERT_EQ(plan.decodes.size(), 1u);
  ASSERT_EQ(plan.prefills.size(), 1u);
  EXPECT_EQ(plan.prefills[0].start_position, 4);
  EXPECT_EQ(plan.prefills[0].num_new_tokens, 7);
  EXPECT_TRUE(plan.prefills[0].samples);
  // Pages: request 1 holds {0, 1}; request 2 took {2} for its first chunk, then {3, 4}.
  const ForwardBatch batch = build_forward_batch(plan, 0);
  EXPECT_EQ(batch.token_ids, (Ints{99, 54, 55, 56, 57, 58, 59, 60}));
  EXPECT_EQ(batch.positions, (Ints{5, 4, 5, 6, 7, 8, 9, 10}));
  EXPECT_EQ(batch.slot_mapping,
            (Ints{1 * 4 + 1, 3 * 4 + 0, 3 * 4 + 1, 3 * 4 + 2, 3 * 4 + 3, 4 * 4 + 0, 4 * 4 + 1, 4 * 4 + 2}));
  EXPECT_EQ(batch.sample_token_indices, (Ints{0, 7}));

  EXPECT_EQ(batch.decode.num_rows, 1);
  EXPECT_EQ(batch.decode.max_pages_per_seq, 3);  // the widest row of this plan
  EXPECT_EQ(batch.decode.query_start_len, (Ints{0, 1}));
  EXPECT_EQ(batch.decode.seq_lens, (Ints{6}));
  EXPECT_EQ(batch.decode.block_table, (Ints{0, 1, -1}));

  EXPECT_EQ(batch.prefill.num_rows, 1);
  EXPECT_EQ(batch.prefill.query_start_len, (Ints{0, 7}));
  EXPECT_EQ(batch.prefill.seq_lens, (Ints{11}));
  EXPECT_EQ(batch.prefill.block_table, (Ints{2, 3, 4}));
  testing::check_part(batch, batch.decode, plan.decodes, 0, 4);
  testing::check_part(batch, batch.prefill, plan.prefills, 1, 4);

  // A fixed row width pads with -1; one too narrow is refused.
  const ForwardBatch wide = build_forward_batch(plan, max_pages_per_seq(config));
  EXPECT_EQ(max_pages_per_seq(config), 8);
  EXPECT_EQ(wide.decode.block_table, (Ints{0, 1, -1, -1, -1, -1, -1, -1}));
  EXPECT_EQ(wide.prefill.block_table, (Ints{2, 3, 4, -1, -1, -1, -1, -1}));
  EXPECT_THROW((void)build_forward_batch(plan, 2), std::length_error);

  const std::vector<std::int32_t> next{1, 2};
  (void)scheduler.commit(plan, next);
  testing::expect_pool_returns_to_full(scheduler);
}

TEST(BatchBuilder, EmptyPlanGivesAnEmptyBatch) {
  const ForwardBatch batch = build_forward_batch(StepPlan{}, 0);
  EXPECT_EQ(batch.num_tokens(), 0);
  EXPECT_EQ(batch.decode.num_rows, 0);
  EXPECT_EQ(batch.decode.query_start_len, (Ints{0}));
  EXPECT_EQ(batch.prefill.num_tokens(), 0);
}

}  // namespace
}  // namespace pagedserve
