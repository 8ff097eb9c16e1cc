#include "scheduler/scheduler.h"

#include <gtest/gtest.h>

#include <memory>
#include <stdexcept>
#include <vector>

#include "core/error.h"
#include "tests/unit/scheduler/fake_engine.h"

namespace pagedserve {
namespace {

using testing::make_request;
using testing::token_range;
using Ints = std::vector<std::int32_t>;

SchedulerConfig small_config() {
  SchedulerConfig config;
  config.max_num_seqs = 8;
  config.max_num_batched_tokens = 10;
  config.page_size = 4;
  config.max_model_len = 64;
  config.enable_prefix_caching = false;
  return config;
}

// small_config() with prefix caching and room for whole prompts in one step.
SchedulerConfig caching_config() {
  SchedulerConfig config = small_config();
  config.enable_prefix_caching = true;
  config.max_num_batched_tokens = 64;
  return config;
}

Ints pages_of(const Request& request) {
  const auto pages = request.blocks().table.pages();
  return Ints(pages.begin(), pages.end());
}

void expect_chunk(const ScheduledChunk& chunk, RequestId id, int start, int num_new, bool samples) {
  EXPECT_EQ(chunk.request->id(), id);
  EXPECT_EQ(chunk.start_position, start);
  EXPECT_EQ(chunk.num_new_tokens, num_new);
  EXPECT_EQ(chunk.samples, samples);
}

TEST(Scheduler, ChunkedPrefillSpansStepsWithinTheTokenBudget) {
  Scheduler scheduler(small_config(), 32);
  scheduler.add(make_request(1, token_range(25, 100), 3));
  scheduler.add(make_request(2, token_range(3, 200), 3));

  StepPlan plan = scheduler.schedule();  // A takes the whole budget; B waits
  ASSERT_TRUE(plan.decodes.empty());
  ASSERT_EQ(plan.prefills.size(), 1u);
  expect_chunk(plan.prefills[0], 1, 0, 10, false);
  EXPECT_EQ(plan.num_scheduled_tokens, 10);
  EXPECT_EQ(pages_of(*scheduler.find(1)), (Ints{0, 1, 2}));
  EXPECT_EQ(scheduler.num_waiting(), 1);
  EXPECT_TRUE(scheduler.commit(plan, {}).empty());
  EXPECT_EQ(scheduler.find(1)->num_computed_tokens(), 10);

  plan = scheduler.schedule();
  ASSERT_EQ(plan.prefills.size(), 1u);
  expect_chunk(plan.prefills[0], 1, 10, 10, false);
  EXPECT_EQ(pages_of(*scheduler.find(1)), (Ints{0, 1, 2, 3, 4}));
  (void)scheduler.commit(plan, {});

  plan = scheduler.schedule();  // A's last 5 tokens, then B fits in the remaining 5
  ASSERT_EQ(plan.prefills.size(), 2u);
  expect_chunk(plan.prefills[0], 1, 20, 5, true);
  expect_chunk(plan.prefills[1], 2, 0, 3, true);
  EXPECT_EQ(plan.num_scheduled_tokens, 8);
  EXPECT_EQ(pages_of(*scheduler.find(1)), (Ints{0, 1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(pages_of(*scheduler.find(2)), (Ints{7}));
  const std::vector<std::int32_t> sampled{500, 600};
  const std::vector<SampleOutcome> outcomes = scheduler.commit(plan, sampled);
  ASSERT_EQ(outcomes.size(), 2u);
  EXPECT_EQ(outcomes[0].request->id(), 1u);
  EXPECT_EQ(outcomes[0].token, 500);
  EXPECT_FALSE(outcomes[0].finish);
  EXPECT_EQ(scheduler.find(1)->num_tokens(), 26);
  EXPECT_EQ(scheduler.find(1)->num_computed_tokens(), 25);
  EXPECT_EQ(scheduler.find(2)->output_ids()[0], 600);

  plan = scheduler.schedule();  // both decode now
  ASSERT_EQ(plan.decodes.size(), 2u);
  EXPECT_TRUE(plan.prefills.empty());
  expect_chunk(plan.decodes[0], 1, 25, 1, true);
  expect_chunk(plan.decodes[1], 2, 3, 1, true);
  EXPECT_EQ(pages_of(*scheduler.find(1)), (Ints{0, 1, 2, 3, 4, 5, 6}));  // slot 25 is in page 6
  EXPECT_EQ(pages_of(*scheduler.find(2)), (Ints{7}));
  const std::vector<std::int32_t> wrong_count{1};
  EXPECT_THROW((void)scheduler.commit(plan, wrong_count), std::invalid_argument);
  testing::expect_pool_returns_to_full(scheduler);
}

TEST(Scheduler, DecodeRowsComeFirstAndGetTheBudgetFirst) {
  SchedulerConfig config = small_config();
  config.max_num_batched_tokens = 4;
  Scheduler scheduler(config, 32);
  scheduler.add(make_request(1, token_range(2, 10), 5));
  scheduler.add(make_request(2, token_range(9, 20), 5));
  StepPlan plan = scheduler.schedule();
  ASSERT_EQ(plan.prefills.size(), 2u);
  expect_chunk(plan.prefills[0], 1, 0, 2, true);
  expect_chunk(plan.prefills[1], 2, 0, 2, false);
  const std::vector<std::int32_t> sampled{7};
  (void)scheduler.commit(plan, sampled);

  plan = scheduler.schedule();
  ASSERT_EQ(plan.decodes.size(), 1u);
  expect_chunk(plan.decodes[0], 1, 2, 1, true);
  ASSERT_EQ(plan.prefills.size(), 1u);
  expect_chunk(plan.prefills[0], 2, 2, 3, false);  // what the decode left of the budget
  const std::vector<std::int32_t> sampled2{8};
  (void)scheduler.commit(plan, sampled2);

  const ForwardBatch batch = build_forward_batch(plan, 0);
  EXPECT_EQ(batch.decode.num_tokens(), 1);
  EXPECT_EQ(batch.token_ids[0], 7);  // the decode's token comes first in the flattened batch
  testing::expect_pool_returns_to_full(scheduler);
}

TEST(Scheduler, RowCapLimitsRunningSequences) {
  SchedulerConfig config = small_config();
  config.max_num_seqs = 2;
  config.max_num_batched_tokens = 100;
  Scheduler scheduler(config, 32);
  for (RequestId id = 1; id <= 3; ++id)
    scheduler.add(make_request(id, token_range(3, 0 + 10 * static_cast<int>(id)), 1));
  StepPlan plan = scheduler.schedule();
  EXPECT_EQ(plan.num_rows(), 2);
  EXPECT_EQ(scheduler.num_running(), 2);
  EXPECT_EQ(scheduler.num_waiting(), 1);
  const std::vector<std::int32_t> sampled{5, 5};
  const std::vector<SampleOutcome> outcomes = scheduler.commit(plan, sampled);
  ASSERT_EQ(outcomes.size(), 2u);
  EXPECT_EQ(outcomes[0].finish, FinishReason::length);  // max_tokens = 1
  EXPECT_EQ(scheduler.take_finished().size(), 2u);
  plan = scheduler.schedule();
  EXPECT_EQ(plan.finished_ids, (std::vector<RequestId>{1, 2}));
  ASSERT_EQ(plan.prefills.size(), 1u);
  EXPECT_EQ(plan.prefills[0].request->id(), 3u);
  testing::expect_pool_returns_to_full(scheduler);
}

TEST(Scheduler, PreemptionPicksTheNewestRunningSequence) {
  SchedulerConfig config = small_config();
  config.max_num_batched_tokens = 64;
  Scheduler scheduler(config, 6);
  scheduler.add(make_request(1, token_range(8, 100), 10));
  scheduler.add(make_request(2, token_range(8, 200), 10));
  scheduler.add(make_request(3, token_range(8, 300), 10));
  scheduler.add(make_request(4, token_range(4, 400), 10));  // finds the pool full: waits
  StepPlan plan = scheduler.schedule();
  ASSERT_EQ(plan.prefills.size(), 3u);
  EXPECT_EQ(pages_of(*scheduler.find(1)), (Ints{0, 1}));
  EXPECT_EQ(pages_of(*scheduler.find(2)), (Ints{2, 3}));
  EXPECT_EQ(pages_of(*scheduler.find(3)), (Ints{4, 5}));
  const std::vector<std::int32_t> sampled{11, 22, 33};
  (void)scheduler.commit(plan, sampled);

  plan = scheduler.schedule();  // every decode needs a third page; none is free
  EXPECT_EQ(plan.preempted_ids, (std::vector<RequestId>{3}));
  ASSERT_EQ(plan.decodes.size(), 2u);
  EXPECT_EQ(plan.decodes[0].request->id(), 1u);
  EXPECT_EQ(plan.decodes[1].request->id(), 2u);
  EXPECT_TRUE(plan.prefills.empty());  // nobody is admitted in a step that preempted
  EXPECT_EQ(pages_of(*scheduler.find(1)), (Ints{0, 1, 5}));
  EXPECT_EQ(pages_of(*scheduler.find(2)), (Ints{2, 3, 4}));
  const Request& victim = *scheduler.find(3);
  EXPECT_EQ(victim.state(), RequestState::preempted);
  EXPECT_EQ(victim.num_computed_tokens(), 0);
  EXPECT_EQ(victim.num_tokens(), 9);  // its generated token is kept, to be recomputed
  EXPECT_EQ(victim.output_ids()[0], 33);
  EXPECT_EQ(victim.timings().num_preemptions, 1);
  EXPECT_EQ(victim.blocks().table.num_pages(), 0);
  EXPECT_EQ(scheduler.stats().num_preemptions, 1);
  EXPECT_EQ(scheduler.num_waiting(), 2);
  const std::vector<std::int32_t> two{12, 23};
  (void)scheduler.commit(plan, two);

  // Once room is back, the preempted request goes before the one that was already waiting.
  EXPECT_TRUE(scheduler.finish(1, FinishReason::stop));  // frees 3 pages: enough for 3, not also 4
  plan = scheduler.schedule();
  ASSERT_EQ(plan.prefills.size(), 1u);
  expect_chunk(plan.prefills[0], 3, 0, 9, true);
  EXPECT_EQ(scheduler.find(4)->state(), RequestState::waiting);
  testing::expect_pool_returns_to_full(scheduler);
}

TEST(Scheduler, PreemptedSequenceIsRecomputedWithItsOutputAndResumes) {
  SchedulerConfig config = small_config();
  config.max_num_batched_tokens = 64;
  Scheduler scheduler(config, 6);
  for (RequestId id = 1; id <= 3; ++id) {
    scheduler.add(make_request(id, token_range(8, 100 * static_cast<int>(id)), 2));
  }
  testing::FakeEngine engine(scheduler);
  StepPlan plan = engine.step();  // three prompts fill the pool
  EXPECT_EQ(plan.prefills.size(), 3u);
  plan = engine.step();  // 1 and 2 need a page each: 3 is preempted; 1 and 2 finish
  EXPECT_EQ(plan.preempted_ids, (std::vector<RequestId>{3}));
  EXPECT_EQ(plan.decodes.size(), 2u);
  ASSERT_EQ(engine.finished.size(), 2u);
  const Request& victim = *scheduler.find(3);
  const std::int32_t first_output = victim.output_ids()[0];

  plan = engine.step();  // prompt and the kept output token are recomputed in one chunk
  ASSERT_EQ(plan.prefills.size(), 1u);
  expect_chunk(plan.prefills[0], 3, 0, 9, true);
  ASSERT_EQ(engine.finished.size(), 3u);
  const Request& done = *engine.finished[2];
  EXPECT_EQ(done.id(), 3u);
  EXPECT_EQ(done.finish_reason(), FinishReason::length);
  EXPECT_EQ(done.output_ids()[0], first_output);
  const Ints expected = testing::expected_sequence(token_range(8, 300), 2);
  EXPECT_EQ(Ints(done.token_ids().begin(), done.token_ids().end()), expected);
  EXPECT_EQ(done.timings().num_preemptions, 1);
  testing::expect_pool_returns_to_full(scheduler);
}

TEST(Scheduler, AbortWorksInEveryState) {
  SchedulerConfig config = small_config();
  config.max_num_batched_tokens = 12;
  Scheduler scheduler(config, 7);
  scheduler.add(make_request(1, token_range(4, 10), 20));  // will be decoding
  scheduler.add(make_request(2, token_range(20, 30), 5));  // will be mid-prefill
  scheduler.add(make_request(3, token_range(4, 60), 20));  // will be waiting
  StepPlan plan = scheduler.schedule();
  ASSERT_EQ(plan.prefills.size(), 2u);
  expect_chunk(plan.prefills[1], 2, 0, 8, false);
  const std::vector<std::int32_t> one{5};
  (void)scheduler.commit(plan, one);
  EXPECT_EQ(scheduler.find(1)->state(), RequestState::running);
  EXPECT_EQ(scheduler.find(2)->state(), RequestState::running);
  EXPECT_EQ(scheduler.find(3)->state(), RequestState::waiting);

  scheduler.abort(2);   // mid-prefill
  scheduler.abort(3);   // waiting
  scheduler.abort(77);  // unknown: ignored
  plan = scheduler.schedule();
  EXPECT_EQ(plan.finished_ids, (std::vector<RequestId>{2, 3}));
  ASSERT_EQ(plan.decodes.size(), 1u);
  EXPECT_EQ(plan.decodes[0].request->id(), 1u);
  EXPECT_TRUE(plan.prefills.empty());
  (void)scheduler.commit(plan, one);
  std::vector<std::unique_ptr<Request>> finished = scheduler.take_finished();
  ASSERT_EQ(finished.size(), 2u);
  for (const auto& request : finished) {
    EXPECT_EQ(request->state(), RequestState::finished);
    EXPECT_EQ(request->finish_reason(), FinishReason::abort);
    EXPECT_TRUE(request->timings().finish.has_value());
  }
  EXPECT_EQ(scheduler.block_manager().num_free_blocks(), 7 - 2);  // request 1: 6 tokens, 2 pages

  // Preempted: a newcomer fills the pool, then its own decode finds no page and it is the newest.
  scheduler.add(make_request(4, token_range(20, 90), 5));
  plan = scheduler.schedule();
  expect_chunk(plan.decodes[0], 1, 5, 1, true);
  ASSERT_EQ(plan.prefills.size(), 1u);
  expect_chunk(plan.prefills[0], 4, 0, 11, false);
  (void)scheduler.commit(plan, one);
  plan = scheduler.schedule();
  expect_chunk(plan.prefills[0], 4, 11, 9, true);
  const std::vector<std::int32_t> two{5, 5};
  (void)scheduler.commit(plan, two);
  EXPECT_EQ(scheduler.block_manager().num_free_blocks(), 0);
  plan = scheduler.schedule();
  EXPECT_EQ(plan.preempted_ids, (std::vector<RequestId>{4}));
  ASSERT_EQ(plan.decodes.size(), 1u);
  EXPECT_EQ(plan.decodes[0].request->id(), 1u);
  EXPECT_EQ(scheduler.find(4)->state(), RequestState::preempted);
  (void)scheduler.commit(plan, one);
  scheduler.abort(4);  // preempted
  scheduler.abort(1);  // decoding
  plan = scheduler.schedule();
  EXPECT_TRUE(plan.empty());
  EXPECT_EQ(plan.finished_ids, (std::vector<RequestId>{4, 1}));
  EXPECT_EQ(scheduler.take_finished().size(), 2u);
  EXPECT_EQ(scheduler.block_manager().num_free_blocks(), 7);

  scheduler.abort(1);  // finished already: ignored
  EXPECT_TRUE(scheduler.schedule().finished_ids.empty());
  EXPECT_FALSE(scheduler.finish(1, FinishReason::stop));
  testing::expect_pool_returns_to_full(scheduler);
}

TEST(Scheduler, FinishEndsALiveRequestAtOnce) {
  Scheduler scheduler(small_config(), 32);
  scheduler.add(make_request(1, token_range(4, 10), 20));
  StepPlan plan = scheduler.schedule();
  const std::vector<std::int32_t> one{5};
  (void)scheduler.commit(plan, one);
  EXPECT_TRUE(scheduler.finish(1, FinishReason::stop));  // e.g. a stop string matched
  EXPECT_EQ(scheduler.block_manager().num_free_blocks(), 32);
  std::vector<std::unique_ptr<Request>> finished = scheduler.take_finished();
  ASSERT_EQ(finished.size(), 1u);
  EXPECT_EQ(finished[0]->finish_reason(), FinishReason::stop);
  EXPECT_EQ(finished[0]->output_ids().size(), 1u);
  EXPECT_EQ(scheduler.schedule().finished_ids, (std::vector<RequestId>{1}));
}

TEST(Scheduler, PrefixReuseCountsCachedTokensAsComputed) {
  SchedulerConfig config = caching_config();
  Scheduler scheduler(config, 16);
  scheduler.add(make_request(1, token_range(10, 100), 2));
  StepPlan plan = scheduler.schedule();
  (void)scheduler.commit(plan, std::vector<std::int32_t>{1});
  plan = scheduler.schedule();
  EXPECT_EQ(scheduler.commit(plan, std::vector<std::int32_t>{2})[0].finish, FinishReason::length);

  // Same first 8 tokens (two pages), then different ones.
  Ints prompt = token_range(8, 100);
  prompt.insert(prompt.end(), {7, 7, 7});
  scheduler.add(make_request(2, prompt, 2));
  plan = scheduler.schedule();
  ASSERT_EQ(plan.prefills.size(), 1u);
  expect_chunk(plan.prefills[0], 2, 8, 3, true);
  EXPECT_EQ(scheduler.find(2)->num_computed_tokens(), 8);
  EXPECT_EQ(scheduler.stats().prefix_hit_tokens, 8);
  EXPECT_EQ(scheduler.stats().prefix_query_tokens, 10 + 11);
  (void)scheduler.commit(plan, std::vector<std::int32_t>{1});
  EXPECT_TRUE(scheduler.finish(2, FinishReason::stop));

  // A prompt equal to two cached pages recomputes its last page (the last token must be computed).
  scheduler.add(make_request(3, token_range(8, 100), 1));
  plan = scheduler.schedule();
  expect_chunk(plan.prefills[0], 3, 4, 4, true);
  EXPECT_EQ(scheduler.stats().prefix_hit_tokens, 8 + 4);
  EXPECT_EQ(scheduler.stats().prefix_query_tokens, 10 + 11 + 8);
  (void)scheduler.commit(plan, std::vector<std::int32_t>{1});
  (void)scheduler.take_finished();
  testing::expect_pool_returns_to_full(scheduler);
}

// A request asking for prompt logprobs computes its whole prompt even where the prefix cache holds
// it (no position whose logprob was asked is skipped), its chunks score every prompt position but
// the last (that one samples), at most max_num_seqs positions per step, and only it pays: a plain
// request beside it gets its whole chunk and scores nothing.
TEST(Scheduler, PromptLogprobsScoreEveryPromptPositionWithoutThePrefixCache) {
  SchedulerConfig config = caching_config();
  config.max_num_seqs = 3;  // scored positions per step
  Scheduler scheduler(config, 32);
  scheduler.add(make_request(1, token_range(10, 100), 1));  // computes and caches two full pages
  StepPlan plan = scheduler.schedule();
  (void)scheduler.commit(plan, std::vector<std::int32_t>{1});
  (void)scheduler.take_finished();

  StopCriteria stop;
  stop.max_tokens = 2;
  SamplingParams scoring;
  scoring.prompt_logprobs = 2;
  scheduler.add(std::make_unique<Request>(2, token_range(10, 100), scoring, stop));
  scheduler.add(make_request(3, token_range(6, 500), 1));
  plan = scheduler.schedule();
  ASSERT_EQ(plan.prefills.size(), 2u);
  expect_chunk(plan.prefills[0], 2, 0, 3, false);  // no prefix hit; cut to the 3 scoring rows
  EXPECT_EQ(plan.prefills[0].num_scored, 3);
  expect_chunk(plan.prefills[1], 3, 0, 6, true);
  EXPECT_EQ(plan.prefills[1].num_scored, 0);
  const ForwardBatch batch = build_forward_batch(plan, 0);
  ASSERT_EQ(batch.scored_positions.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    const ScoredPosition& scored = batch.scored_positions[static_cast<std::size_t>(i)];
    EXPECT_EQ(scored.token_index, i);
    EXPECT_EQ(scored.next_token, 101 + i);  // the prompt token after position i
    EXPECT_EQ(scored.num_logprobs, 2);
  }
  EXPECT_EQ(batch.sample_token_indices, (Ints{8}));
  (void)scheduler.commit(plan, std::vector<std::int32_t>{5});
  (void)scheduler.take_finished();

  int scored = 3;
  int steps = 1;
  for (; scheduler.find(2)->num_output_tokens() == 0 && steps < 10; ++steps) {
    plan = scheduler.schedule();
    ASSERT_EQ(plan.prefills.size(), 1u);
    EXPECT_LE(plan.prefills[0].num_scored, 3);
    scored += plan.prefills[0].num_scored;
    (void)scheduler.commit(plan, std::vector<std::int32_t>(static_cast<std::size_t>(plan.num_samples()), 9));
  }
  EXPECT_EQ(scored, 9);  // positions 0..8 score tokens 1..9; position 9 samples
  EXPECT_EQ(steps, 3);   // 3 + 3 + 4 tokens: position 9 samples and scores nothing
  EXPECT_EQ(scheduler.find(2)->num_cached_prompt_tokens(), 0);
  EXPECT_EQ(scheduler.stats().prefix_hit_tokens, 0);
  plan = scheduler.schedule();  // a decode now: nothing left to score
  EXPECT_EQ(plan.num_scored(), 0);
  (void)scheduler.commit(plan, std::vector<std::int32_t>{9});
  (void)scheduler.take_finished();
  testing::expect_pool_returns_to_full(scheduler);
}

// Three choices of one 11-token prompt (pages of 4): the first computes it; the others wait one
// step, then take its two full pages from the prefix cache and a copy of its partly filled third
// page (2 slots: positions 8, 9), and compute only position 10. The fake engine follows the copies
// and checks every K/V read; no page is ever written while shared; the pool empties at the end.
TEST(Scheduler, SiblingsCopyThePartlyFilledLastPageInsteadOfRecomputingIt) {
  SchedulerConfig config = caching_config();
  Scheduler scheduler(config, 32);
  for (RequestId id = 1; id <= 3; ++id) scheduler.add(make_request(id, token_range(11, 100), 3));
  testing::FakeEngine engine(scheduler);
  StepPlan plan = engine.step();
  ASSERT_EQ(plan.prefills.size(), 1u);  // the siblings wait for the first
  EXPECT_TRUE(plan.page_copies.empty());
  plan = engine.step();
  ASSERT_EQ(plan.decodes.size(), 3u);  // the first's decode, then each sibling's last prompt token
  EXPECT_EQ(plan.decodes[1].start_position, 10);
  EXPECT_EQ(plan.decodes[2].start_position, 10);
  ASSERT_EQ(plan.page_copies.size(), 2u);
  const std::int32_t first_page = scheduler.find(1)->blocks().table.page(2);
  for (const PageCopy& copy : plan.page_copies) {
    EXPECT_EQ(copy.source, first_page);
    EXPECT_EQ(copy.num_slots, 2);
    EXPECT_NE(copy.target, first_page);
  }
  EXPECT_EQ(scheduler.find(2)->num_cached_prompt_tokens(), 10);
  EXPECT_EQ(scheduler.stats().prefix_hit_tokens, 2 * 8);  // the copies are not prefix-cache hits
  engine.run_to_completion(20);
  ASSERT_EQ(engine.finished.size(), 3u);
  for (const auto& request : engine.finished) {
    const Ints first(engine.finished[0]->token_ids().begin(), engine.finished[0]->token_ids().end());
    EXPECT_EQ(Ints(request->token_ids().begin(), request->token_ids().end()), first);
  }
  testing::expect_pool_returns_to_full(scheduler);
}

TEST(Scheduler, CanEverFitNamesTheNumbers) {
  SchedulerConfig config = small_config();                   // max_model_len 64, page 4
  Scheduler scheduler(config, 10);                           // 40 tokens of cache
  EXPECT_FALSE(scheduler.can_ever_fit(20, 21).has_value());  // 40 cached tokens exactly
  const std::optional<std::string> pool = scheduler.can_ever_fit(20, 22);
  ASSERT_TRUE(pool.has_value());
  EXPECT_EQ(*pool,
            "prompt (20 tokens) + max_tokens (22) needs 11 KV-cache pages of 4 tokens, but the cache has "
            "only 10 pages");
  const std::optional<std::string> context = scheduler.can_ever_fit(60, 5);
  ASSERT_TRUE(context.has_value());
  EXPECT_EQ(*context,
            "prompt (60 tokens) + max_tokens (5) = 65 tokens exceeds the context length max_model_len (64)");
  EXPECT_TRUE(scheduler.can_ever_fit(0, 5).has_value());
  EXPECT_TRUE(scheduler.can_ever_fit(5, 0).has_value());
  EXPECT_THROW(scheduler.add(make_request(1, token_range(60, 0), 5)), std::invalid_argument);
  scheduler.add(make_request(1, token_range(3, 0), 5));
  EXPECT_THROW(scheduler.add(make_request(1, token_range(3, 0), 5)), std::invalid_argument);  // id live
  testing::expect_pool_returns_to_full(scheduler);
}

TEST(Scheduler, InvalidConfigIsASetupError) {
  SchedulerConfig config = small_config();
  config.max_num_batched_tokens = 0;
  EXPECT_THROW(Scheduler(config, 4), SetupError);
  EXPECT_THROW(Scheduler(small_config(), 0), SetupError);
}

}  // namespace
}  // namespace pagedserve
