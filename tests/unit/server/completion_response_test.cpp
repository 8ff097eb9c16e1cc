#include "server/completion_response.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

namespace pagedserve {
namespace {

using nlohmann::json;

CompletionHeader header() { return {"cmpl-abc", 1700000000, "tiny"}; }

TEST(CompletionResponse, NonStreamingBody) {
  CompletionChoice c0{0, "hello", std::nullopt, "length"};
  CompletionChoice c1{1, "bye", std::nullopt, "stop"};
  json body = json::parse(completion_response_json(header(), {c0, c1}, {5, 7}));
  EXPECT_EQ(body["id"], "cmpl-abc");
  EXPECT_EQ(body["object"], "text_completion");
  EXPECT_EQ(body["created"], 1700000000);
  EXPECT_EQ(body["model"], "tiny");
  ASSERT_EQ(body["choices"].size(), 2u);
  EXPECT_EQ(body["choices"][0]["index"], 0);
  EXPECT_EQ(body["choices"][0]["text"], "hello");
  EXPECT_TRUE(body["choices"][0]["logprobs"].is_null());
  EXPECT_EQ(body["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(body["choices"][1]["finish_reason"], "stop");
  EXPECT_EQ(body["usage"]["prompt_tokens"], 5);
  EXPECT_EQ(body["usage"]["completion_tokens"], 7);
  EXPECT_EQ(body["usage"]["total_tokens"], 12);
}

TEST(CompletionResponse, LogprobsBlock) {
  ChoiceLogprobs lp;
  lp.tokens = {"a", "b"};
  lp.token_logprobs = {-0.5f, -std::numeric_limits<float>::infinity()};
  lp.top_logprobs = {{{"a", -0.5f}, {"c", -1.5f}}, {{"b", -2.0f}}};
  lp.text_offset = {0, 1};
  json body = json::parse(completion_response_json(header(), {{0, "ab", lp, "length"}}, {1, 2}));
  const json& l = body["choices"][0]["logprobs"];
  EXPECT_EQ(l["tokens"], json({"a", "b"}));
  EXPECT_DOUBLE_EQ(l["token_logprobs"][0].get<double>(), -0.5);
  EXPECT_DOUBLE_EQ(l["token_logprobs"][1].get<double>(), -9999.0);  // -inf clamped, still JSON
  EXPECT_DOUBLE_EQ(l["top_logprobs"][0]["c"].get<double>(), -1.5);
  EXPECT_EQ(l["text_offset"], json({0, 1}));
}

// Echoed prompt tokens lead with a null logprob and null top_logprobs; prompt_logprobs appear in
// the choice only when set, null first, as vLLM's {id: {logprob, rank, decoded_token}}.
TEST(CompletionResponse, EchoedNullLogprobAndPromptLogprobs) {
  ChoiceLogprobs lp;
  lp.tokens = {"a", "b"};
  lp.token_logprobs = {std::nullopt, -0.5f};
  lp.top_logprobs = {{}, {{"b", -0.5f}}};
  lp.text_offset = {0, 1};
  CompletionChoice choice{0, "ab", lp, "length"};
  choice.prompt_logprobs = PromptLogprobs{
      std::nullopt, std::vector<PromptLogprobEntry>{{66, -0.5f, 1, "b"},
                                                    {67, -std::numeric_limits<float>::infinity(), 2, "c"}}};
  json body =
      json::parse(completion_response_json(header(), {choice, {1, "x", std::nullopt, "stop"}}, {1, 2}));
  const json& l = body["choices"][0]["logprobs"];
  EXPECT_TRUE(l["token_logprobs"][0].is_null());
  EXPECT_TRUE(l["top_logprobs"][0].is_null());
  EXPECT_DOUBLE_EQ(l["top_logprobs"][1]["b"].get<double>(), -0.5);
  const json& p = body["choices"][0]["prompt_logprobs"];
  ASSERT_EQ(p.size(), 2u);
  EXPECT_TRUE(p[0].is_null());
  EXPECT_EQ(p[1]["66"], json({{"logprob", -0.5}, {"rank", 1}, {"decoded_token", "b"}}));
  EXPECT_DOUBLE_EQ(p[1]["67"]["logprob"].get<double>(), -9999.0);
  EXPECT_FALSE(body["choices"][1].contains("prompt_logprobs"));
}

TEST(CompletionResponse, StreamChunkAndUsageChunk) {
  json chunk = json::parse(completion_chunk_json(header(), {2, "tok", std::nullopt, ""}));
  EXPECT_EQ(chunk["object"], "text_completion");
  ASSERT_EQ(chunk["choices"].size(), 1u);
  EXPECT_EQ(chunk["choices"][0]["index"], 2);
  EXPECT_EQ(chunk["choices"][0]["text"], "tok");
  EXPECT_TRUE(chunk["choices"][0]["finish_reason"].is_null());
  EXPECT_TRUE(chunk["usage"].is_null());
  json usage = json::parse(usage_chunk_json(header(), {3, 4}));
  EXPECT_TRUE(usage["choices"].empty());
  EXPECT_EQ(usage["usage"]["total_tokens"], 7);
}

TEST(CompletionResponse, SseFraming) {
  EXPECT_EQ(sse_event("{\"a\":1}"), "data: {\"a\":1}\n\n");
  EXPECT_EQ(kSseDone, "data: [DONE]\n\n");
}

TEST(CompletionResponse, InvalidUtf8TokenTextIsReplacedNotThrown) {
  std::string half = "\xe4\xbd";  // the first two bytes of a three-byte character
  json body = json::parse(completion_response_json(header(), {{0, half, std::nullopt, "stop"}}, {1, 1}));
  EXPECT_FALSE(body["choices"][0]["text"].get<std::string>().empty());
}

TEST(CompletionResponse, IdsAreUniqueAndPrefixed) {
  std::string a = make_completion_id(), b = make_completion_id();
  EXPECT_EQ(a.rfind("cmpl-", 0), 0u);
  EXPECT_EQ(a.size(), 5u + 32u);
  EXPECT_NE(a, b);
}

}  // namespace
}  // namespace pagedserve
