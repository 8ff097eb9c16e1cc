// The engine end to end on a tiny dummy-weight Qwen3 model: batching, preemption, prefix reuse,
// stop criteria and aborts must never change what a request produces.
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "tests/unit/engine/engine_fixture.h"

namespace pagedserve::testing {
namespace {

class EngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!qwen3_tokenizer_dir()) GTEST_SKIP() << "Qwen3 tokenizer not fetched (scripts/prepare-test-data)";
  }
};

RequestSpec seeded_spec(std::vector<std::int32_t> prompt, int max_tokens, std::uint64_t seed) {
  RequestSpec spec = greedy_spec(std::move(prompt), max_tokens);
  spec.sampling.temperature = 0.9f;
  spec.sampling.top_p = 0.95f;
  spec.sampling.seed = seed;
  return spec;
}

std::vector<RequestSpec> mixed_specs() {
  std::vector<RequestSpec> specs;
  const int lengths[] = {1, 5, 15, 16, 17, 40, 70, 130};
  for (int i = 0; i < 8; ++i) {
    specs.push_back(i % 2 == 0 ? greedy_spec(make_prompt(lengths[i], i), 10 + i)
                               : seeded_spec(make_prompt(lengths[i], i), 10 + i, 100 + i));
  }
  return specs;
}

TEST_F(EngineTest, BatchingChangesNothing) {
  const std::vector<RequestSpec> specs = mixed_specs();
  EngineHarness alone_harness({});
  std::vector<std::vector<std::int32_t>> alone;
  for (const RequestSpec& spec : specs) alone.push_back(alone_harness.run({spec})[0]->tokens);

  EngineHarness batched_harness({});
  const auto batched = batched_harness.run(specs);
  for (std::size_t i = 0; i < specs.size(); ++i) {
    EXPECT_EQ(batched[i]->tokens, alone[i]) << "request " << i;
    EXPECT_EQ(static_cast<int>(batched[i]->tokens.size()), specs[i].stop.max_tokens);
    ASSERT_TRUE(batched[i]->finish);
    EXPECT_EQ(batched[i]->finish->reason, FinishReason::length);
    EXPECT_EQ(batched[i]->num_finishes, 1);
  }
  const EngineStats stats = batched_harness.engine().stats();
  EXPECT_EQ(stats.num_running, 0);
  EXPECT_EQ(stats.kv_cache_usage, 0.0);
}

TEST_F(EngineTest, SmallTokenBudgetChunksPrefillsWithoutChangingOutput) {
  const std::vector<RequestSpec> specs = mixed_specs();
  EngineHarness reference({});
  const auto expected = reference.run(specs);
  EngineSetup chunked;
  chunked.max_num_batched_tokens = 24;  // the 130-token prompt takes several steps
  chunked.max_num_seqs = 3;
  EngineHarness harness(chunked);
  const auto got = harness.run(specs);
  for (std::size_t i = 0; i < specs.size(); ++i) EXPECT_EQ(got[i]->tokens, expected[i]->tokens) << i;
  EXPECT_GT(harness.engine().stats().num_steps, reference.engine().stats().num_steps);
}

TEST_F(EngineTest, PreemptedRequestsFinishWithIdenticalOutput) {
  std::vector<RequestSpec> specs;
  for (int i = 0; i < 6; ++i) specs.push_back(greedy_spec(make_prompt(20 + 3 * i, 50 + i), 40));
  EngineHarness roomy({});
  const auto expected = roomy.run(specs);
  EXPECT_EQ(roomy.engine().stats().num_preemptions, 0);

  EngineSetup tight;
  tight.num_pages = 12;  // 192 token slots for 6 x ~70 tokens: someone must be preempted
  tight.enable_prefix_caching = false;
  EngineHarness harness(tight);
  const auto got = harness.run(specs);
  EXPECT_GT(harness.engine().stats().num_preemptions, 0);
  for (std::size_t i = 0; i < specs.size(); ++i) EXPECT_EQ(got[i]->tokens, expected[i]->tokens) << i;
  EXPECT_EQ(harness.engine().stats().kv_cache_usage, 0.0);
}

TEST_F(EngineTest, FiftyRequestsOverAFifthOfTheirPoolAllComplete) {
  std::vector<RequestSpec> specs;
  int pages_needed = 0;
  for (int i = 0; i < 50; ++i) {
    specs.push_back(i % 3 == 0 ? seeded_spec(make_prompt(10 + i, 200 + i), 20, i) : greedy_spec(make_prompt(10 + i, 200 + i), 20));
    pages_needed += (10 + i + 20 + 15) / 16;
  }
  EngineSetup tight;
  tight.num_pages = pages_needed / 5;
  tight.max_num_seqs = 16;
  EngineHarness harness(tight);
  const auto got = harness.run(specs);
  for (std::size_t i = 0; i < specs.size(); ++i) {
    ASSERT_TRUE(got[i]->finish) << i;
    EXPECT_EQ(got[i]->finish->reason, FinishReason::length) << i;
    EXPECT_EQ(got[i]->tokens.size(), 20u) << i;
  }
  const EngineStats stats = harness.engine().stats();
  EXPECT_GT(stats.num_preemptions, 0);
  EXPECT_EQ(stats.kv_cache_usage, 0.0);
  EXPECT_EQ(stats.generation_tokens, 50 * 20);
}

TEST_F(EngineTest, SharedPrefixIsReusedAndChangesNothing) {
  std::vector<std::int32_t> prefix = make_prompt(100, 7);
  std::vector<std::int32_t> second = prefix;
  const std::vector<std::int32_t> tail = make_prompt(9, 8);
  second.insert(second.end(), tail.begin(), tail.end());

  EngineSetup no_cache;
  no_cache.enable_prefix_caching = false;
  EngineHarness uncached(no_cache);
  const auto expected = uncached.run({greedy_spec(second, 12)});

  EngineHarness cached({});
  cached.run({greedy_spec(prefix, 4)});
  const EngineStats before = cached.engine().stats();
  const auto got = cached.run({greedy_spec(second, 12)});
  const EngineStats after = cached.engine().stats();
  EXPECT_EQ(got[0]->tokens, expected[0]->tokens);
  // 100 shared tokens = 6 full pages of 16: 96 tokens come from the cache, 13 are computed.
  EXPECT_EQ(after.prefix_cache_hits - before.prefix_cache_hits, 96);
  EXPECT_EQ(after.prefix_cache_queries - before.prefix_cache_queries, 109);
}

// n = 8 choices of one 1,000-token prompt arrive together (as /v1/completions submits them):
// the prompt is computed once; each sibling waits one step, then takes the 62 full pages (992
// tokens) from the cache and a copy of the first's partly filled last page (7 tokens), and
// computes only the last token. Outputs are what each would get alone.
TEST_F(EngineTest, SiblingsOfOnePromptComputeItOnce) {
  EngineSetup setup;
  setup.max_num_batched_tokens = 1024;
  setup.max_model_len = 1100;
  EngineHarness harness(setup);
  const std::vector<std::int32_t> prompt = make_prompt(1000, 11);
  std::vector<RequestSpec> specs;
  for (int i = 0; i < 8; ++i) specs.push_back(seeded_spec(prompt, 4, 300 + std::uint64_t(i)));
  const auto sinks = harness.run(specs);
  const EngineStats stats = harness.engine().stats();
  EXPECT_EQ(stats.computed_prompt_tokens, 1000 + 7 * 1);
  EXPECT_EQ(stats.prompt_tokens, 8 * 1000);  // vLLM's counter: every request's prompt
  EXPECT_EQ(stats.prefix_cache_hits, 7 * 992);
  ASSERT_TRUE(sinks[0]->finish);
  EXPECT_EQ(sinks[0]->finish->cached_tokens, 0);
  for (int i = 1; i < 8; ++i) {
    ASSERT_TRUE(sinks[i]->finish);
    EXPECT_EQ(sinks[i]->finish->cached_tokens, 999) << i;
  }
  EngineHarness alone(setup);
  for (int i = 0; i < 8; i += 7) {
    const auto single = alone.run({specs[std::size_t(i)]});
    EXPECT_EQ(single[0]->tokens, sinks[std::size_t(i)]->tokens) << i;
  }
}

TEST_F(EngineTest, SkipSpecialTokensIsPerRequest) {
  EngineHarness harness({});
  const std::int32_t eos = harness.tokenizer().eos_ids().at(0);
  RequestSpec keep = greedy_spec(make_prompt(5, 3), 1);
  keep.sampling.logit_bias = {{eos, 100.0f}};  // forces the special token
  keep.skip_special_tokens = false;
  RequestSpec skip = keep;
  skip.skip_special_tokens = true;
  const auto sinks = harness.run({keep, skip});
  ASSERT_EQ(sinks[0]->tokens, std::vector<std::int32_t>{eos});
  ASSERT_EQ(sinks[1]->tokens, std::vector<std::int32_t>{eos});
  EXPECT_EQ(sinks[0]->text, harness.tokenizer().decode(std::vector<std::int32_t>{eos}, false));
  EXPECT_FALSE(sinks[0]->text.empty());
  EXPECT_EQ(sinks[1]->text, "");
}

TEST_F(EngineTest, MaxTokensStopTokensMinTokensAndIgnoreEos) {
  EngineHarness harness({});
  const std::vector<std::int32_t> prompt = make_prompt(12, 31);
  const auto free_run = harness.run({greedy_spec(prompt, 16)});
  const std::vector<std::int32_t>& tokens = free_run[0]->tokens;
  ASSERT_EQ(tokens.size(), 16u);

  // A stop token at position 3 ends the request there; its text is not emitted.
  RequestSpec stop_at_3 = greedy_spec(prompt, 16);
  stop_at_3.stop.stop_token_ids = {tokens[3]};
  const auto stopped = harness.run({stop_at_3});
  const auto first_hit = std::find(tokens.begin(), tokens.end(), tokens[3]) - tokens.begin();
  EXPECT_EQ(static_cast<long>(stopped[0]->tokens.size()), first_hit + 1);
  EXPECT_EQ(stopped[0]->finish->reason, FinishReason::stop);

  // min_tokens: the stop token is ignored before 8 tokens are out.
  RequestSpec with_min = stop_at_3;
  with_min.stop.min_tokens = 8;
  const auto min_run = harness.run({with_min});
  EXPECT_GE(min_run[0]->tokens.size(), 8u);
  EXPECT_EQ(std::vector<std::int32_t>(min_run[0]->tokens.begin(), min_run[0]->tokens.begin() + 8),
            std::vector<std::int32_t>(tokens.begin(), tokens.begin() + 8));

  // EOS: with the generated token declared EOS the request stops; with ignore_eos it runs on.
  RequestSpec eos = greedy_spec(prompt, 16);
  eos.stop.ignore_eos = false;
  eos.stop.eos_token_ids = {tokens[2]};
  const auto eos_run = harness.run({eos});
  EXPECT_EQ(eos_run[0]->finish->reason, FinishReason::stop);
  EXPECT_LE(eos_run[0]->tokens.size(), 3u);
  eos.stop.ignore_eos = true;
  EXPECT_EQ(harness.run({eos})[0]->tokens, tokens);
}

TEST_F(EngineTest, StopStringSplitAcrossTokensIsNeverEmitted) {
  EngineHarness harness({});
  const std::vector<std::int32_t> prompt = make_prompt(12, 41);
  const auto free_run = harness.run({greedy_spec(prompt, 24)});
  const std::string& text = free_run[0]->text;
  // Find a stop string that straddles a token boundary: the end of token k's text plus the
  // start of token k+1's, taken from the decoded pieces.
  std::string so_far;
  std::string stop;
  std::size_t boundary = 0;
  for (std::size_t k = 2; k + 1 < free_run[0]->tokens.size() && stop.empty(); ++k) {
    const std::string before = harness.tokenizer().decode(
        std::span<const std::int32_t>(free_run[0]->tokens.data(), k + 1), true);
    const std::string after = harness.tokenizer().decode(
        std::span<const std::int32_t>(free_run[0]->tokens.data(), k + 2), true);
    if (before.size() >= 2 && after.size() >= before.size() + 2 && text.compare(0, after.size(), after) == 0) {
      stop = after.substr(before.size() - 2, 4);
      boundary = before.size() - 2;
    }
  }
  ASSERT_FALSE(stop.empty()) << "no usable token boundary in: " << text;
  RequestSpec spec = greedy_spec(prompt, 24);
  spec.stop.stop_strings = {stop};
  const auto got = harness.run({spec});
  EXPECT_EQ(got[0]->finish->reason, FinishReason::stop);
  const std::size_t first = text.find(stop);
  ASSERT_NE(first, std::string::npos);
  EXPECT_LE(first, boundary);
  EXPECT_EQ(got[0]->text, text.substr(0, first));
  EXPECT_EQ(got[0]->text.find(stop), std::string::npos);
}

TEST_F(EngineTest, RefusesRequestsThatCanNeverFit) {
  EngineHarness harness({});
  RequestSpec too_long = greedy_spec(make_prompt(1000, 1), 100);
  const SubmitResult result = harness.engine().submit(too_long, std::make_shared<CollectingSink>());
  EXPECT_FALSE(result.id);
  EXPECT_NE(result.error.find("1000"), std::string::npos) << result.error;
  EXPECT_NE(result.error.find("1024"), std::string::npos) << result.error;

  RequestSpec bad_token = greedy_spec({5, -1}, 4);
  EXPECT_FALSE(harness.engine().submit(bad_token, std::make_shared<CollectingSink>()).id);
  RequestSpec empty = greedy_spec({}, 4);
  EXPECT_FALSE(harness.engine().submit(empty, std::make_shared<CollectingSink>()).id);
}

TEST_F(EngineTest, AbortBeforeAndDuringGenerationFreesEverything) {
  EngineHarness harness({});
  auto early = std::make_shared<CollectingSink>();
  const SubmitResult queued = harness.engine().submit(greedy_spec(make_prompt(30, 3), 50), early);
  ASSERT_TRUE(queued.id);
  harness.engine().abort(*queued.id);
  harness.engine().run_until_idle();
  ASSERT_TRUE(early->finish);
  EXPECT_EQ(early->finish->reason, FinishReason::abort);
  EXPECT_EQ(early->num_finishes, 1);
  EXPECT_EQ(harness.engine().stats().kv_cache_usage, 0.0);
}

// A sink that signals a waiting test thread when its request finishes.
class WaitableSink : public CollectingSink {
 public:
  void on_delta(const TokenDelta& delta) override {
    std::lock_guard lock(mutex_);
    CollectingSink::on_delta(delta);
  }
  void on_finish(const FinishInfo& info) override {
    {
      std::lock_guard lock(mutex_);
      CollectingSink::on_finish(info);
    }
    done_.notify_all();
  }
  bool wait(std::chrono::seconds timeout) {
    std::unique_lock lock(mutex_);
    return done_.wait_for(lock, timeout, [this] { return finish.has_value(); });
  }
  int deltas() {
    std::lock_guard lock(mutex_);
    return num_deltas;
  }

 private:
  std::mutex mutex_;
  std::condition_variable done_;
};

TEST_F(EngineTest, ThreadedEngineServesSubmissionsAndAbortsMidStream) {
  EngineHarness reference({});
  const auto expected = reference.run({greedy_spec(make_prompt(25, 9), 30)});

  EngineHarness harness({});
  harness.engine().start();
  auto keeper = std::make_shared<WaitableSink>();
  auto quitter = std::make_shared<WaitableSink>();
  ASSERT_TRUE(harness.engine().submit(greedy_spec(make_prompt(25, 9), 30), keeper).id);
  const SubmitResult quitting = harness.engine().submit(greedy_spec(make_prompt(40, 10), 400), quitter);
  ASSERT_TRUE(quitting.id);
  while (quitter->deltas() < 3) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  harness.engine().abort(*quitting.id);
  ASSERT_TRUE(keeper->wait(std::chrono::seconds(60)));
  ASSERT_TRUE(quitter->wait(std::chrono::seconds(60)));
  EXPECT_EQ(quitter->finish->reason, FinishReason::abort);
  EXPECT_EQ(keeper->tokens, expected[0]->tokens);
  // Pages are released when the finish is delivered; stats are published right after.
  for (int i = 0; i < 1000 && harness.engine().stats().kv_cache_usage != 0.0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_EQ(harness.engine().stats().kv_cache_usage, 0.0);
  harness.engine().stop();
}

TEST_F(EngineTest, StopAbortsWhateverIsLive) {
  EngineHarness harness({});
  harness.engine().start();
  auto sink = std::make_shared<WaitableSink>();
  ASSERT_TRUE(harness.engine().submit(greedy_spec(make_prompt(20, 4), 900), sink).id);
  while (sink->deltas() < 1) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  harness.engine().stop();
  ASSERT_TRUE(sink->finish);
  EXPECT_EQ(sink->finish->reason, FinishReason::abort);
  EXPECT_FALSE(harness.engine().submit(greedy_spec(make_prompt(5, 4), 4), sink).id);
}

}  // namespace
}  // namespace pagedserve::testing
