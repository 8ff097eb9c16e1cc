// Many requests through a pool far smaller than their total need, with a fake model: everything
// completes, preemptions happen, outputs equal an unconstrained run, and no page leaks.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <vector>

#include "kvcache/block_table.h"
#include "scheduler/scheduler.h"
#include "tests/unit/kvcache/test_seed.h"
#include "tests/unit/scheduler/fake_engine.h"

namespace pagedserve {
namespace {

using Ints = std::vector<std::int32_t>;

class SchedulerStress : public ::testing::TestWithParam<bool> {};

TEST_P(SchedulerStress, FiftyRequestsNeedingFiveTimesThePoolAllComplete) {
  const bool prefix_caching = GetParam();
  std::mt19937_64 rng(testing::fresh_seed(prefix_caching ? "SchedulerStress/prefix_caching"
                                                         : "SchedulerStress/no_prefix_caching"));
  SchedulerConfig config;
  config.max_num_seqs = 8;
  config.max_num_batched_tokens = 32;
  config.page_size = 4;
  config.max_model_len = 128;
  config.enable_prefix_caching = prefix_caching;
  constexpr int kNumPages = 40;
  Scheduler scheduler(config, kNumPages);

  // A few shared "system prompts" so that prefix caching has something to find.
  std::vector<Ints> prefixes;
  for (int i = 0; i < 3; ++i) prefixes.push_back(testing::token_range(4 + 6 * i, 1 + 100 * i));
  std::map<RequestId, Ints> expected;
  int total_pages_needed = 0;
  for (RequestId id = 1; id <= 50; ++id) {
    Ints prompt = prefixes[rng() % prefixes.size()];
    const int suffix = 1 + static_cast<int>(rng() % 40);
    for (int i = 0; i < suffix; ++i) prompt.push_back(1 + static_cast<std::int32_t>(rng() % 900));
    const int max_tokens = 5 + static_cast<int>(rng() % 40);
    ASSERT_FALSE(scheduler.can_ever_fit(static_cast<int>(prompt.size()), max_tokens).has_value());
    total_pages_needed += BlockTable::pages_for_tokens(static_cast<int>(prompt.size()) + max_tokens, 4);
    expected[id] = testing::expected_sequence(prompt, max_tokens);
    scheduler.add(testing::make_request(id, prompt, max_tokens));
  }
  ASSERT_GE(total_pages_needed, 5 * kNumPages);

  testing::FakeEngine engine(scheduler);
  engine.run_to_completion(20000);
  ASSERT_EQ(engine.finished.size(), 50u);
  for (const auto& request : engine.finished) {
    EXPECT_EQ(request->finish_reason(), FinishReason::length);
    EXPECT_EQ(Ints(request->token_ids().begin(), request->token_ids().end()), expected[request->id()])
        << "request " << request->id();
    EXPECT_TRUE(request->timings().first_token.has_value());
  }
  const SchedulerStats stats = scheduler.stats();
  EXPECT_GT(stats.num_preemptions, 0);
  if (prefix_caching) {
    EXPECT_GT(stats.prefix_hit_tokens, 0);
  } else {
    EXPECT_EQ(stats.prefix_hit_tokens, 0);
  }
  std::cout << "steps " << engine.num_steps << ", preemptions " << stats.num_preemptions << ", prefix hits "
            << stats.prefix_hit_tokens << "/" << stats.prefix_query_tokens << " tokens\n";
  EXPECT_EQ(stats.num_free_pages, kNumPages);
  testing::expect_pool_returns_to_full(scheduler);
}

INSTANTIATE_TEST_SUITE_P(PrefixCaching, SchedulerStress, ::testing::Bool());

// Random aborts and finishes interleaved with steps never leak pages or break invariants.
TEST(SchedulerStressAborts, RandomAbortsAndFinishesLeaveThePoolFull) {
  std::mt19937_64 rng(testing::fresh_seed("SchedulerStressAborts"));
  SchedulerConfig config;
  config.max_num_seqs = 6;
  config.max_num_batched_tokens = 24;
  config.page_size = 4;
  config.max_model_len = 96;
  config.enable_prefix_caching = true;
  Scheduler scheduler(config, 24);
  testing::FakeEngine engine(scheduler);
  RequestId next_id = 1;
  for (int round = 0; round < 300 && !::testing::Test::HasFatalFailure(); ++round) {
    if (rng() % 2 == 0 && next_id < 900) {
      Ints prompt = testing::token_range(static_cast<int>(rng() % 12), 1);  // shared start
      const int suffix = 1 + static_cast<int>(rng() % 30);
      for (int i = 0; i < suffix; ++i) prompt.push_back(1 + static_cast<std::int32_t>(rng() % 50));
      scheduler.add(testing::make_request(next_id++, prompt, 1 + static_cast<int>(rng() % 40)));
    }
    if (rng() % 4 == 0) scheduler.abort(1 + rng() % next_id);
    engine.step();
    if (rng() % 8 == 0) {
      const RequestId id = 1 + rng() % next_id;
      (void)scheduler.finish(id, FinishReason::stop);
      for (auto& request : scheduler.take_finished()) engine.finished.push_back(std::move(request));
    }
  }
  engine.run_to_completion(engine.num_steps + 5000);
  EXPECT_EQ(static_cast<RequestId>(engine.finished.size()), next_id - 1);
  testing::expect_pool_returns_to_full(scheduler);
}

}  // namespace
}  // namespace pagedserve
