#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <iostream>
#include <numeric>
#include <random>
#include <set>
#include <stdexcept>
#include <vector>

#include "model/sampler.h"

namespace pagedserve {
namespace {

std::uint64_t fresh_seed() {
  const std::uint64_t seed = std::random_device{}();
  std::cout << "seed " << seed << "\n";
  return seed;
}

std::vector<float> random_logits(std::size_t vocab, std::mt19937_64& rng, float scale = 3.0f) {
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> logits(vocab);
  for (float& logit : logits) logit = normal(rng);
  return logits;
}

std::vector<double> softmax(const std::vector<float>& logits) {
  const double max_value = *std::max_element(logits.begin(), logits.end());
  std::vector<double> probs(logits.size());
  double total = 0.0;
  for (std::size_t i = 0; i < logits.size(); ++i) total += probs[i] = std::exp(logits[i] - max_value);
  for (double& p : probs) p /= total;
  return probs;
}

// Logits whose softmax is exactly `probs`.
std::vector<float> logits_for(const std::vector<double>& probs) {
  std::vector<float> logits;
  for (const double p : probs) logits.push_back(static_cast<float>(std::log(p)));
  return logits;
}

std::vector<int> histogram(Sampler& sampler, const std::vector<float>& logits, int draws) {
  std::vector<int> counts(logits.size(), 0);
  for (int i = 0; i < draws; ++i) ++counts[static_cast<std::size_t>(sampler.sample(logits, {}, {}).token)];
  return counts;
}

// Empirical frequencies against expected probabilities, within 5 standard deviations.
void expect_frequencies(const std::vector<int>& counts, const std::vector<double>& expected, int draws) {
  for (std::size_t i = 0; i < counts.size(); ++i) {
    const double sigma = std::sqrt(draws * expected[i] * (1.0 - expected[i]));
    EXPECT_NEAR(counts[i], draws * expected[i], 5.0 * sigma + 1.0) << "token " << i;
  }
}

TEST(Sampler, GreedyIsArgmaxAndIgnoresSeed) {
  std::mt19937_64 rng(fresh_seed());
  SamplingParams params;
  params.temperature = 0.0f;
  params.top_k = 3;  // irrelevant for greedy
  Sampler first(params);
  params.seed = 7;
  Sampler second(params);
  for (int trial = 0; trial < 20; ++trial) {
    const std::vector<float> logits = random_logits(151936, rng);
    const auto expected =
        static_cast<std::int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    EXPECT_EQ(first.sample(logits, {}, {}).token, expected);
    EXPECT_EQ(second.sample(logits, {}, {}).token, expected);
  }
}

TEST(Sampler, SameSeedSameTokens) {
  std::mt19937_64 rng(fresh_seed());
  const std::vector<float> logits = random_logits(32000, rng, 1.0f);
  for (const auto& configure : std::vector<void (*)(SamplingParams&)>{
           [](SamplingParams&) {}, [](SamplingParams& p) { p.top_k = 40; },
           [](SamplingParams& p) { p.top_p = 0.9f; }, [](SamplingParams& p) { p.min_p = 0.05f; }}) {
    SamplingParams params;
    params.temperature = 0.8f;
    params.seed = rng();
    configure(params);
    Sampler a(params);
    Sampler b(params);
    params.seed = *params.seed + 1;
    Sampler other(params);
    std::vector<std::int32_t> from_a;
    std::vector<std::int32_t> from_b;
    std::vector<std::int32_t> from_other;
    for (int i = 0; i < 64; ++i) {
      from_a.push_back(a.sample(logits, {}, {}).token);
      from_b.push_back(b.sample(logits, {}, {}).token);
      from_other.push_back(other.sample(logits, {}, {}).token);
    }
    EXPECT_EQ(from_a, from_b);
    EXPECT_NE(from_a, from_other);
  }
}

TEST(Sampler, TemperatureOneFollowsSoftmax) {
  const std::vector<double> probs = {0.4, 0.25, 0.15, 0.1, 0.06, 0.04};
  SamplingParams params;
  params.seed = 1234;
  Sampler sampler(params);
  const int draws = 20000;
  expect_frequencies(histogram(sampler, logits_for(probs), draws), probs, draws);
}

TEST(Sampler, TemperatureSharpens) {
  const std::vector<double> probs = {0.4, 0.25, 0.15, 0.1, 0.06, 0.04};
  SamplingParams params;
  params.seed = 99;
  params.temperature = 0.5f;  // p_i proportional to probs_i^2
  Sampler sampler(params);
  std::vector<double> expected;
  for (const double p : probs) expected.push_back(p * p);
  const double total = std::accumulate(expected.begin(), expected.end(), 0.0);
  for (double& p : expected) p /= total;
  const int draws = 20000;
  expect_frequencies(histogram(sampler, logits_for(probs), draws), expected, draws);
}

TEST(Sampler, TopKRestrictsAndRenormalises) {
  const std::vector<double> probs = {0.05, 0.4, 0.1, 0.25, 0.15, 0.05};
  SamplingParams params;
  params.seed = 5;
  params.top_k = 3;  // tokens 1, 3, 4
  Sampler sampler(params);
  const int draws = 20000;
  expect_frequencies(histogram(sampler, logits_for(probs), draws), {0.0, 0.5, 0.0, 0.3125, 0.1875, 0.0},
                     draws);
}

TEST(Sampler, TopPKeepsTheSmallestSetReachingP) {
  const std::vector<double> probs = {0.15, 0.5, 0.05, 0.3};
  const int draws = 20000;
  SamplingParams params;
  params.seed = 11;
  params.top_p = 0.75f;  // 0.5 + 0.3 reaches it: tokens 1 and 3
  Sampler two(params);
  expect_frequencies(histogram(two, logits_for(probs), draws), {0.0, 0.625, 0.0, 0.375}, draws);
  params.top_p = 0.85f;  // needs 0.15 too
  Sampler three(params);
  expect_frequencies(histogram(three, logits_for(probs), draws), {0.15 / 0.95, 0.5 / 0.95, 0.0, 0.3 / 0.95},
                     draws);
  params.top_p = 0.01f;  // always the most likely
  Sampler one(params);
  expect_frequencies(histogram(one, logits_for(probs), 1000), {0.0, 1.0, 0.0, 0.0}, 1000);
}

TEST(Sampler, MinPDropsUnlikelyTokens) {
  const std::vector<double> probs = {0.5, 0.3, 0.15, 0.05};
  SamplingParams params;
  params.seed = 3;
  params.min_p = 0.2f;  // keep p >= 0.1
  Sampler sampler(params);
  const int draws = 20000;
  expect_frequencies(histogram(sampler, logits_for(probs), draws), {0.5 / 0.95, 0.3 / 0.95, 0.15 / 0.95, 0.0},
                     draws);
}

// On a real-sized vocabulary every sample must come from the set a full sort defines.
TEST(Sampler, LargeVocabularySupportMatchesFullSort) {
  std::mt19937_64 rng(fresh_seed());
  const std::vector<float> logits = random_logits(151936, rng, 2.0f);
  std::vector<std::int32_t> order(logits.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(),
            [&](std::int32_t a, std::int32_t b) { return logits[a] > logits[b]; });
  const std::vector<double> probs = softmax(logits);

  for (const float top_p : {0.3f, 0.9f, 1.0f}) {
    for (const int top_k : {-1, 50, 5000}) {
      SCOPED_TRACE("top_p " + std::to_string(top_p) + " top_k " + std::to_string(top_k));
      const std::size_t k = top_k > 0 ? static_cast<std::size_t>(top_k) : logits.size();
      double mass_k = 0.0;
      for (std::size_t i = 0; i < k; ++i) mass_k += probs[order[i]];
      std::set<std::int32_t> allowed;
      double cumulative = 0.0;
      for (std::size_t i = 0; i < k && cumulative < top_p * mass_k; ++i) {
        cumulative += probs[order[i]];
        allowed.insert(order[i]);
      }
      SamplingParams params;
      params.seed = rng();
      params.top_p = top_p;
      params.top_k = top_k;
      Sampler sampler(params);
      std::set<std::int32_t> seen;
      for (int draw = 0; draw < 100; ++draw) {
        const std::int32_t token = sampler.sample(logits, {}, {}).token;
        EXPECT_TRUE(allowed.count(token)) << "token " << token << " outside the top-p/top-k set";
        seen.insert(token);
      }
      EXPECT_GT(seen.size(), 1u);
    }
  }
}

TEST(Sampler, RepetitionPenaltyOverPromptAndOutput) {
  SamplingParams params;
  params.temperature = 0.0f;
  params.repetition_penalty = 2.0f;
  Sampler sampler(params);
  const std::vector<float> logits = {2.0f, -1.0f, 3.0f, 1.8f, -0.5f};
  const std::vector<std::int32_t> prompt = {0, 1, 1, 99999, -3};  // out-of-range ids are ignored
  const std::vector<std::int32_t> output = {2, 2};
  // Seen tokens: positive logits halved, negative ones doubled, once however often they occur.
  EXPECT_EQ(sampler.sample(logits, prompt, output).token, 3);
  const std::vector<float> expected = {1.0f, -2.0f, 1.5f, 1.8f, -0.5f};
  const auto processed = sampler.processed_logits();
  ASSERT_EQ(processed.size(), expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) EXPECT_FLOAT_EQ(processed[i], expected[i]) << i;
  EXPECT_EQ(sampler.sample(logits, {}, {}).token, 2);  // nothing seen: no penalty
}

TEST(Sampler, FrequencyAndPresencePenaltiesCountOutputOnly) {
  SamplingParams params;
  params.temperature = 0.0f;
  params.frequency_penalty = 0.5f;
  params.presence_penalty = 0.25f;
  Sampler sampler(params);
  const std::vector<float> logits = {1.0f, 1.0f, 1.0f, 1.0f};
  const std::vector<std::int32_t> prompt = {3, 3, 3};
  const std::vector<std::int32_t> output = {0, 0, 0, 1};
  sampler.sample(logits, prompt, output);
  const std::vector<float> expected = {1.0f - 1.5f - 0.25f, 1.0f - 0.5f - 0.25f, 1.0f, 1.0f};
  const auto processed = sampler.processed_logits();
  for (std::size_t i = 0; i < expected.size(); ++i) EXPECT_FLOAT_EQ(processed[i], expected[i]) << i;

  // Penalties then temperature, and the scratch counts are clean for the next call.
  SamplingParams warm = params;
  warm.temperature = 2.0f;
  warm.seed = 1;
  Sampler warmed(warm);
  warmed.sample(logits, prompt, output);
  warmed.sample(logits, prompt, {});
  for (std::size_t i = 0; i < logits.size(); ++i) EXPECT_FLOAT_EQ(warmed.processed_logits()[i], 0.5f) << i;
}

TEST(Sampler, LogitBiasIsAddedBeforePenaltiesAndNotToLogprobs) {
  SamplingParams params;
  params.temperature = 0.0f;
  params.repetition_penalty = 2.0f;
  params.num_logprobs = 2;
  params.logit_bias = {{0, -100.0f}, {1, 1.5f}, {3, 0.5f}};
  Sampler sampler(params);
  const std::vector<float> logits = {5.0f, 1.0f, 2.0f, -1.0f};
  const std::vector<std::int32_t> output = {1, 3};
  const SampledToken sampled = sampler.sample(logits, {}, output);
  // Biased first, then the repetition penalty over the biased value: (1 + 1.5) / 2, (-1 + 0.5) * 2.
  const std::vector<float> expected = {-95.0f, 1.25f, 2.0f, -1.0f};
  const auto processed = sampler.processed_logits();
  for (std::size_t i = 0; i < expected.size(); ++i) EXPECT_FLOAT_EQ(processed[i], expected[i]) << i;
  EXPECT_EQ(sampled.token, 2);  // -100 banned the argmax
  // Logprobs stay the model's own: token 0 is still the most likely there.
  ASSERT_EQ(sampled.top_logprobs.size(), 2u);
  EXPECT_EQ(sampled.top_logprobs[0].first, 0);
  const std::vector<double> probs = softmax(logits);
  EXPECT_NEAR(sampled.logprob, std::log(probs[2]), 1e-5);

  // +100 makes a random draw certain.
  SamplingParams forced;
  forced.seed = 3;
  forced.logit_bias = {{3, 100.0f}};
  Sampler random(forced);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(random.sample(logits, {}, {}).token, 3);
}

TEST(Sampler, LogprobsAreRawLogSoftmax) {
  std::mt19937_64 rng(fresh_seed());
  const std::vector<float> logits = random_logits(1000, rng);
  const std::vector<double> probs = softmax(logits);
  SamplingParams params;
  params.seed = rng();
  params.temperature = 0.7f;
  params.repetition_penalty = 1.5f;  // changes sampling, not the reported logprobs
  params.num_logprobs = 1000;
  Sampler sampler(params);
  const std::vector<std::int32_t> output = {1, 2, 3};
  const SampledToken sampled = sampler.sample(logits, {}, output);
  EXPECT_NEAR(sampled.logprob, std::log(probs[static_cast<std::size_t>(sampled.token)]), 1e-4);
  ASSERT_EQ(sampled.top_logprobs.size(), 1000u);
  double total = 0.0;
  for (std::size_t i = 0; i < sampled.top_logprobs.size(); ++i) {
    const auto [token, logprob] = sampled.top_logprobs[i];
    EXPECT_NEAR(logprob, std::log(probs[static_cast<std::size_t>(token)]), 1e-4);
    if (i > 0) {
      EXPECT_GE(sampled.top_logprobs[i - 1].second, logprob);
    }
    total += std::exp(static_cast<double>(logprob));
  }
  EXPECT_NEAR(total, 1.0, 1e-4);
}

TEST(Sampler, TopLogprobsAreTheMostLikely) {
  std::mt19937_64 rng(fresh_seed());
  const std::vector<float> logits = random_logits(151936, rng);
  std::vector<std::int32_t> order(logits.size());
  std::iota(order.begin(), order.end(), 0);
  std::partial_sort(order.begin(), order.begin() + 5, order.end(),
                    [&](std::int32_t a, std::int32_t b) { return logits[a] > logits[b]; });
  SamplingParams params;
  params.temperature = 0.0f;
  params.num_logprobs = 5;
  Sampler sampler(params);
  const SampledToken sampled = sampler.sample(logits, {}, {});
  ASSERT_EQ(sampled.top_logprobs.size(), 5u);
  for (int i = 0; i < 5; ++i)
    EXPECT_EQ(sampled.top_logprobs[static_cast<std::size_t>(i)].first, order[static_cast<std::size_t>(i)]);
  EXPECT_EQ(sampled.token, order[0]);
  EXPECT_FLOAT_EQ(sampled.logprob, sampled.top_logprobs[0].second);
  EXPECT_LT(sampled.logprob, 0.0f);
}

// A prompt position is scored as a sampled token is reported: the same raw logprob and top-N for
// the token a greedy sampler picks; any other token gets its own logprob and its rank (ids whose
// logit is >= its own: ties count as more likely, as vLLM's rank).
TEST(Sampler, ScoreTokenMatchesTheSampledTokensLogprobs) {
  std::mt19937_64 rng(fresh_seed());
  std::vector<float> logits = random_logits(5000, rng);
  SamplingParams params;
  params.temperature = 0.0f;
  params.num_logprobs = 7;
  Sampler sampler(params);
  const SampledToken sampled = sampler.sample(logits, {}, {});
  const ScoredToken best = score_token(logits, sampled.token, 7);
  EXPECT_EQ(best.token, sampled.token);
  EXPECT_EQ(best.logprob, sampled.logprob);
  EXPECT_EQ(best.top_logprobs, sampled.top_logprobs);
  EXPECT_EQ(best.rank, 1);

  std::vector<std::int32_t> order(logits.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(),
            [&](std::int32_t a, std::int32_t b) { return logits[a] > logits[b]; });
  const std::vector<double> probs = softmax(logits);
  const std::int32_t tenth = order[9];
  const ScoredToken scored = score_token(logits, tenth, 0);
  EXPECT_EQ(scored.rank, 10);
  EXPECT_NEAR(scored.logprob, std::log(probs[static_cast<std::size_t>(tenth)]), 1e-4);
  EXPECT_TRUE(scored.top_logprobs.empty());
  logits[static_cast<std::size_t>(order[10])] = logits[static_cast<std::size_t>(tenth)];  // a tie below it
  EXPECT_EQ(score_token(logits, tenth, 0).rank, 11);
  EXPECT_EQ(score_token(logits, order.back(), 3).rank, 5000);
  EXPECT_THROW(score_token(logits, 5000, 0), std::invalid_argument);
}

TEST(Sampler, DegenerateLogitsDoNotBreak) {
  const float inf = std::numeric_limits<float>::infinity();
  SamplingParams params;
  params.seed = 2;
  params.top_p = 0.5f;
  Sampler sampler(params);
  EXPECT_EQ(sampler.sample(std::vector<float>{-inf, 3.0f, -inf}, {}, {}).token, 1);
  const SampledToken none = sampler.sample(std::vector<float>{-inf, -inf}, {}, {});
  EXPECT_TRUE(none.token == 0 || none.token == 1);
  EXPECT_EQ(sampler.sample(std::vector<float>{std::nanf(""), 1.0f, 0.0f}, {}, {}).token != 0, true);
}

TEST(Sampler, ValidationMessages) {
  SamplingParams params;
  EXPECT_TRUE(Sampler::validation_error(params).empty());
  params.temperature = -1.0f;
  EXPECT_NE(Sampler::validation_error(params).find("temperature"), std::string::npos);
  params = {};
  params.top_p = 0.0f;
  EXPECT_NE(Sampler::validation_error(params).find("top_p"), std::string::npos);
  params = {};
  params.top_k = -2;
  EXPECT_NE(Sampler::validation_error(params).find("top_k"), std::string::npos);
  params = {};
  params.min_p = 1.5f;
  EXPECT_NE(Sampler::validation_error(params).find("min_p"), std::string::npos);
  params = {};
  params.prompt_logprobs = -1;
  EXPECT_NE(Sampler::validation_error(params).find("prompt_logprobs"), std::string::npos);
  params = {};
  params.repetition_penalty = 0.0f;
  EXPECT_NE(Sampler::validation_error(params).find("repetition_penalty"), std::string::npos);
  params = {};
  params.presence_penalty = 3.0f;
  EXPECT_NE(Sampler::validation_error(params).find("presence_penalty"), std::string::npos);
  params = {};
  params.logit_bias = {{5, 100.5f}};
  EXPECT_NE(Sampler::validation_error(params).find("logit_bias"), std::string::npos);
  params.logit_bias = {{5, 1.0f}, {5, 2.0f}};
  EXPECT_NE(Sampler::validation_error(params).find("logit_bias"), std::string::npos);
  params.logit_bias = {{-1, 1.0f}};
  EXPECT_NE(Sampler::validation_error(params).find("logit_bias"), std::string::npos);
  params.logit_bias.assign(kMaxLogitBiasEntries + 1, {});
  for (int i = 0; i <= kMaxLogitBiasEntries; ++i) params.logit_bias[static_cast<std::size_t>(i)].token = i;
  EXPECT_NE(Sampler::validation_error(params).find("at most"), std::string::npos);
  params.logit_bias.pop_back();
  EXPECT_TRUE(Sampler::validation_error(params).empty());
}

}  // namespace
}  // namespace pagedserve
