// Prompt logprobs end to end on the tiny dummy-weight Qwen3 model (CPU backend, f32 KV cache): what
// the model assigns a prompt token must be what it assigned the same token when it generated it, and
// neither chunked prefill (positions scored chunk by chunk, a few per step), a prefix-cache hit nor
// batching with plain requests may change or skip a position.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "tests/unit/engine/engine_fixture.h"

namespace pagedserve::testing {
namespace {

class PromptLogprobsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!qwen3_tokenizer_dir()) GTEST_SKIP() << "Qwen3 tokenizer not fetched (scripts/prepare-test-data)";
  }
};

constexpr int kTop = 5;
// Prefill and decode run different kernels (and matmul shapes) over the same f32 values.
constexpr float kTolerance = 2e-4f;

RequestSpec logprobs_spec(std::vector<std::int32_t> prompt, int max_tokens) {
  RequestSpec spec = greedy_spec(std::move(prompt), max_tokens);
  spec.sampling.num_logprobs = kTop;
  return spec;
}

RequestSpec scoring_spec(std::vector<std::int32_t> prompt) {
  RequestSpec spec = logprobs_spec(std::move(prompt), 1);
  spec.sampling.prompt_logprobs = kTop;
  return spec;
}

void expect_same_alternatives(const std::vector<std::pair<std::int32_t, float>>& got,
                              const std::vector<std::pair<std::int32_t, float>>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t k = 0; k < got.size(); ++k) {
    // Near-ties may swap places between two kernels; the logprob at each place must agree.
    EXPECT_NEAR(got[k].second, want[k].second, kTolerance) << "alternative " << k;
    if (std::fabs(got[k].second - want[k].second) < 1e-6f) {
      EXPECT_EQ(got[k].first, want[k].first) << k;
    }
  }
}

// Every prompt position of `prompt` scored, in order, each naming the prompt token it scores.
void expect_complete(const std::vector<ScoredToken>& scored, const std::vector<std::int32_t>& prompt) {
  ASSERT_EQ(scored.size(), prompt.size() - 1);
  for (std::size_t i = 0; i < scored.size(); ++i) {
    EXPECT_EQ(scored[i].token, prompt[i + 1]) << "position " << i + 1;
    EXPECT_GE(scored[i].rank, 1) << "position " << i + 1;
    EXPECT_EQ(scored[i].top_logprobs.size(), std::size_t(kTop)) << "position " << i + 1;
    EXPECT_LE(scored[i].logprob, 0.0f);
  }
}

void expect_same_scores(const std::vector<ScoredToken>& got, const std::vector<ScoredToken>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    SCOPED_TRACE("position " + std::to_string(i + 1));
    EXPECT_EQ(got[i].token, want[i].token);
    EXPECT_NEAR(got[i].logprob, want[i].logprob, kTolerance);
    expect_same_alternatives(got[i].top_logprobs, want[i].top_logprobs);
  }
}

// Greedy generation of 12 tokens, then the prompt + 11 of them sent back as a prompt: each
// generated token's prompt logprob (and its alternatives) is the logprob it was generated with,
// and, being the argmax, its rank is 1.
TEST_F(PromptLogprobsTest, PromptLogprobsEqualTheLogprobsOfTheSameTokensGenerated) {
  EngineHarness harness({});
  const std::vector<std::int32_t> prompt = make_prompt(21, 3);
  const auto generated = harness.run({logprobs_spec(prompt, 12)})[0];
  ASSERT_EQ(generated->sampled.size(), 12u);

  std::vector<std::int32_t> resent = prompt;
  resent.insert(resent.end(), generated->tokens.begin(), generated->tokens.end() - 1);
  const auto scored = harness.run({scoring_spec(resent)})[0];
  expect_complete(scored->prompt_logprobs, resent);
  ASSERT_FALSE(::testing::Test::HasFailure());
  // The first generated token was sampled from the logits of the prompt's last position.
  EXPECT_EQ(scored->tokens[0], generated->tokens[11]);
  for (std::size_t j = 0; j + 1 < generated->sampled.size(); ++j) {
    SCOPED_TRACE("generated token " + std::to_string(j));
    const SampledToken& sampled = generated->sampled[j];
    const ScoredToken& again = scored->prompt_logprobs[prompt.size() - 1 + j];
    EXPECT_EQ(again.token, sampled.token);
    EXPECT_NEAR(again.logprob, sampled.logprob, kTolerance);
    expect_same_alternatives(again.top_logprobs, sampled.top_logprobs);
    // Greedy picked it: nothing is more likely, unless two logits are (nearly) tied.
    if (sampled.top_logprobs[0].second - sampled.top_logprobs[1].second > 1e-4f) {
      EXPECT_EQ(again.rank, 1);
    }
  }
  // A request that does not ask gets none.
  EXPECT_TRUE(generated->prompt_logprobs.empty());
}

// Chunked prefill with a token budget of 24 and 3 rows per step: the positions arrive 3 per step
// over many steps, beside other requests, and come out as one unchunked run gives them.
TEST_F(PromptLogprobsTest, ChunkedPrefillScoresEveryPositionOnce) {
  const std::vector<std::int32_t> prompt = make_prompt(70, 5);
  EngineHarness reference({});
  const auto expected = reference.run({scoring_spec(prompt)})[0];
  expect_complete(expected->prompt_logprobs, prompt);

  EngineSetup chunked;
  chunked.max_num_batched_tokens = 24;
  chunked.max_num_seqs = 3;
  EngineHarness harness(chunked);
  RequestSpec plain = logprobs_spec(make_prompt(40, 6), 6);
  const auto got = harness.run({plain, scoring_spec(prompt), plain});
  expect_same_scores(got[1]->prompt_logprobs, expected->prompt_logprobs);
  EXPECT_EQ(got[1]->tokens, expected->tokens);
  EXPECT_GE(harness.engine().stats().num_steps, 69 / 3);
  EXPECT_TRUE(got[0]->prompt_logprobs.empty());
  EXPECT_EQ(got[0]->tokens, got[2]->tokens);
}

// The prompt's pages are in the prefix cache already: a request asking for prompt logprobs still
// computes (and scores) every position; a plain one after it takes the cached pages again.
TEST_F(PromptLogprobsTest, PrefixCacheHitDoesNotSkipScoredPositions) {
  const std::vector<std::int32_t> prompt = make_prompt(50, 9);
  EngineHarness fresh({});
  const auto expected = fresh.run({scoring_spec(prompt)})[0];

  EngineHarness harness({});
  harness.run({greedy_spec(prompt, 2)});  // caches the 3 full pages
  const EngineStats before = harness.engine().stats();
  const auto got = harness.run({scoring_spec(prompt)})[0];
  const EngineStats after = harness.engine().stats();
  expect_complete(got->prompt_logprobs, prompt);
  expect_same_scores(got->prompt_logprobs, expected->prompt_logprobs);
  ASSERT_TRUE(got->finish);
  EXPECT_EQ(got->finish->cached_tokens, 0);
  EXPECT_EQ(after.computed_prompt_tokens - before.computed_prompt_tokens, 50);
  EXPECT_EQ(after.prefix_cache_hits, before.prefix_cache_hits);

  const auto plain = harness.run({greedy_spec(prompt, 2)})[0];
  ASSERT_TRUE(plain->finish);
  EXPECT_EQ(plain->finish->cached_tokens, 48);
}

// A one-token prompt has no position to score: the request still runs and gets an empty list.
TEST_F(PromptLogprobsTest, OneTokenPromptHasNothingToScore) {
  EngineHarness harness({});
  const auto got = harness.run({scoring_spec({1234})})[0];
  EXPECT_TRUE(got->prompt_logprobs.empty());
  EXPECT_EQ(got->tokens.size(), 1u);
  RequestSpec too_many = scoring_spec({1, 2, 3});
  too_many.sampling.prompt_logprobs = kMaxScoredLogprobs + 1;
  EXPECT_FALSE(harness.engine().submit(too_many, std::make_shared<CollectingSink>()).id);
}

}  // namespace
}  // namespace pagedserve::testing
