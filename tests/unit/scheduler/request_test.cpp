#include "scheduler/request.h"

#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <vector>

#include "scheduler/scheduler.h"

namespace pagedserve {
namespace {

using Reasons = std::vector<std::optional<FinishReason>>;

// Feeds `outputs` one token per step to a request with prompt {1, 2, 3} and returns the finish
// decision after each token (stopping at the first one that finishes).
Reasons feed(StopCriteria stop, const std::vector<std::int32_t>& outputs, int max_model_len = 100) {
  SchedulerConfig config;
  config.page_size = 4;
  config.max_model_len = max_model_len;
  Scheduler scheduler(config, 64);
  scheduler.add(
      std::make_unique<Request>(1, std::vector<std::int32_t>{1, 2, 3}, SamplingParams{}, std::move(stop)));
  Reasons reasons;
  for (std::int32_t token : outputs) {
    const StepPlan plan = scheduler.schedule();
    const std::vector<std::int32_t> sampled{token};
    const std::vector<SampleOutcome> outcomes = scheduler.commit(plan, sampled);
    reasons.push_back(outcomes.at(0).finish);
    if (outcomes[0].finish) break;
  }
  return reasons;
}

StopCriteria criteria(int max_tokens) {
  StopCriteria stop;
  stop.max_tokens = max_tokens;
  stop.eos_token_ids = {2, 0};
  return stop;
}

constexpr std::optional<FinishReason> kGoOn = std::nullopt;

TEST(RequestStop, EosStopsUnlessIgnored) {
  EXPECT_EQ(feed(criteria(10), {5, 6, 0, 7}), (Reasons{kGoOn, kGoOn, FinishReason::stop}));
  StopCriteria ignore = criteria(10);
  ignore.ignore_eos = true;
  EXPECT_EQ(feed(ignore, {0, 2, 5}), (Reasons{kGoOn, kGoOn, kGoOn}));
}

TEST(RequestStop, StopTokensStopEvenWithIgnoreEos) {
  StopCriteria stop = criteria(10);
  stop.ignore_eos = true;
  stop.stop_token_ids = {42};
  EXPECT_EQ(feed(stop, {2, 42, 5}), (Reasons{kGoOn, FinishReason::stop}));
}

TEST(RequestStop, MinTokensHoldsBackEosAndStopTokens) {
  StopCriteria stop = criteria(10);
  stop.min_tokens = 3;
  stop.stop_token_ids = {42};
  EXPECT_EQ(feed(stop, {0, 42, 0}), (Reasons{kGoOn, kGoOn, FinishReason::stop}));
}

TEST(RequestStop, LengthAtMaxTokensOrContextEnd) {
  EXPECT_EQ(feed(criteria(3), {5, 6, 7, 8}), (Reasons{kGoOn, kGoOn, FinishReason::length}));
  // Prompt 3 + 2 outputs reach max_model_len 5 first.
  EXPECT_EQ(feed(criteria(2), {5, 6}, 5), (Reasons{kGoOn, FinishReason::length}));
  // An EOS on the last allowed token is a stop, not a length.
  EXPECT_EQ(feed(criteria(2), {5, 0}), (Reasons{kGoOn, FinishReason::stop}));
}

TEST(Request, SplitsPromptAndOutputAndRecordsTimings) {
  SchedulerConfig config;
  config.page_size = 4;
  Scheduler scheduler(config, 8);
  scheduler.add(std::make_unique<Request>(7, std::vector<std::int32_t>{4, 5}, SamplingParams{}, criteria(2)));
  const Request& request = *scheduler.find(7);
  EXPECT_EQ(request.state(), RequestState::waiting);
  EXPECT_FALSE(request.timings().first_scheduled);
  StepPlan plan = scheduler.schedule();
  EXPECT_TRUE(request.timings().first_scheduled);
  EXPECT_FALSE(request.timings().first_token);
  const std::vector<std::int32_t> token{9};
  (void)scheduler.commit(plan, token);
  EXPECT_TRUE(request.timings().first_token);
  EXPECT_EQ(request.num_prompt_tokens(), 2);
  EXPECT_EQ(request.num_output_tokens(), 1);
  EXPECT_EQ(request.prompt_ids().size(), 2u);
  EXPECT_EQ(request.output_ids()[0], 9);
  EXPECT_EQ(request.token_ids().size(), 3u);
  EXPECT_EQ(request.num_computed_tokens(), 2);
  EXPECT_EQ(request_state_name(request.state()), "running");
  EXPECT_EQ(finish_reason_name(FinishReason::length), "length");
  EXPECT_TRUE(scheduler.finish(7, FinishReason::abort));
}

}  // namespace
}  // namespace pagedserve
