#include "server/completion_protocol.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace pagedserve {
namespace {

ProtocolLimits limits() {
  ProtocolLimits l;
  l.served_model_name = "tiny";
  l.vocab_size = 1000;
  l.max_model_len = 128;
  return l;
}

CompletionRequest parse_ok(const std::string& body) {
  auto result = parse_completion_request(body, limits());
  if (auto* error = std::get_if<ApiError>(&result)) {
    ADD_FAILURE() << "unexpected error for " << body << ": " << error->message;
    return {};
  }
  return std::get<CompletionRequest>(result);
}

ApiError parse_error(const std::string& body) {
  auto result = parse_completion_request(body, limits());
  if (!std::holds_alternative<ApiError>(result)) {
    ADD_FAILURE() << "expected an error for " << body;
    return {};
  }
  return std::get<ApiError>(result);
}

TEST(CompletionProtocol, DefaultsForAStringPrompt) {
  CompletionRequest r = parse_ok(R"({"prompt": "hello"})");
  ASSERT_EQ(r.prompts.size(), 1u);
  EXPECT_EQ(*r.prompts[0].text, "hello");
  EXPECT_EQ(r.max_tokens, 16);
  EXPECT_EQ(r.n, 1);
  EXPECT_FALSE(r.stream);
  EXPECT_FALSE(r.logprobs.has_value());
  EXPECT_FALSE(r.seed.has_value());
  EXPECT_EQ(r.top_k, -1);
  EXPECT_FLOAT_EQ(r.temperature, 1.0f);
}

TEST(CompletionProtocol, EveryFieldIsRead) {
  CompletionRequest r = parse_ok(R"({
    "prompt": "x", "model": "tiny", "max_tokens": 7, "temperature": 0.5, "top_p": 0.9, "top_k": 5,
    "min_p": 0.1, "n": 3, "stream": true, "stream_options": {"include_usage": true},
    "stop": ["a", "bc"], "stop_token_ids": [1, 2], "seed": 42, "echo": true,
    "presence_penalty": 0.5, "frequency_penalty": -0.5, "repetition_penalty": 1.2,
    "ignore_eos": true, "min_tokens": 2, "user": "u1", "unknown_field": {"deep": [1]}})");
  EXPECT_EQ(r.model, "tiny");
  EXPECT_EQ(r.max_tokens, 7);
  EXPECT_FLOAT_EQ(r.temperature, 0.5f);
  EXPECT_FLOAT_EQ(r.top_p, 0.9f);
  EXPECT_EQ(r.top_k, 5);
  EXPECT_FLOAT_EQ(r.min_p, 0.1f);
  EXPECT_EQ(r.n, 3);
  EXPECT_TRUE(r.stream);
  EXPECT_TRUE(r.include_usage);
  EXPECT_EQ(r.stop, (std::vector<std::string>{"a", "bc"}));
  EXPECT_EQ(r.stop_token_ids, (std::vector<std::int32_t>{1, 2}));
  EXPECT_EQ(r.seed, 42u);
  EXPECT_TRUE(r.echo);
  EXPECT_FLOAT_EQ(r.presence_penalty, 0.5f);
  EXPECT_FLOAT_EQ(r.frequency_penalty, -0.5f);
  EXPECT_FLOAT_EQ(r.repetition_penalty, 1.2f);
  EXPECT_TRUE(r.ignore_eos);
  EXPECT_EQ(r.min_tokens, 2);
  EXPECT_EQ(r.user, "u1");
}

TEST(CompletionProtocol, PromptForms) {
  EXPECT_EQ(parse_ok(R"({"prompt": ["a", "b", "c"]})").prompts.size(), 3u);
  CompletionRequest ids = parse_ok(R"({"prompt": [1, 2, 999]})");
  ASSERT_EQ(ids.prompts.size(), 1u);
  EXPECT_FALSE(ids.prompts[0].text.has_value());
  EXPECT_EQ(ids.prompts[0].token_ids, (std::vector<std::int32_t>{1, 2, 999}));
  CompletionRequest lists = parse_ok(R"({"prompt": [[1], [2, 3]]})");
  ASSERT_EQ(lists.prompts.size(), 2u);
  EXPECT_EQ(lists.prompts[1].token_ids, (std::vector<std::int32_t>{2, 3}));
}

TEST(CompletionProtocol, NullsMeanDefaults) {
  CompletionRequest r = parse_ok(
      R"({"prompt": "x", "max_tokens": null, "stop": null, "logprobs": null, "seed": null,
          "stream": null, "stream_options": null, "temperature": null})");
  EXPECT_EQ(r.max_tokens, 16);
  EXPECT_TRUE(r.stop.empty());
  EXPECT_FALSE(r.logprobs.has_value());
}

TEST(CompletionProtocol, StopAsSingleString) {
  EXPECT_EQ(parse_ok(R"({"prompt": "x", "stop": "\n"})").stop, (std::vector<std::string>{"\n"}));
}

TEST(CompletionProtocol, TopKZeroMeansOff) {
  EXPECT_EQ(parse_ok(R"({"prompt": "x", "top_k": 0})").top_k, -1);
}

TEST(CompletionProtocol, LogprobsZeroIsAllowed) {
  EXPECT_EQ(parse_ok(R"({"prompt": "x", "logprobs": 0})").logprobs, 0);
  EXPECT_EQ(parse_ok(R"({"prompt": "x", "logprobs": 20})").logprobs, 20);
}

struct BadCase {
  const char* body;
  const char* param;  // expected param, "" for none
};

class CompletionProtocolBad : public ::testing::TestWithParam<BadCase> {};

TEST_P(CompletionProtocolBad, Is400InvalidRequest) {
  ApiError e = parse_error(GetParam().body);
  EXPECT_EQ(e.status, 400) << GetParam().body;
  EXPECT_EQ(e.type, "invalid_request_error");
  EXPECT_EQ(e.param, GetParam().param) << GetParam().body << " -> " << e.message;
  EXPECT_FALSE(e.message.empty());
}

INSTANTIATE_TEST_SUITE_P(
    AllCases, CompletionProtocolBad,
    ::testing::Values(
        BadCase{"{not json", ""}, BadCase{"", ""}, BadCase{"[1,2]", ""}, BadCase{"\"text\"", ""},
        BadCase{"42", ""}, BadCase{R"({})", "prompt"}, BadCase{R"({"prompt": null})", "prompt"},
        BadCase{R"({"prompt": ""})", "prompt"}, BadCase{R"({"prompt": []})", "prompt"},
        BadCase{R"({"prompt": [""]})", "prompt"}, BadCase{R"({"prompt": [[]]})", "prompt"},
        BadCase{R"({"prompt": 5})", "prompt"}, BadCase{R"({"prompt": {"a": 1}})", "prompt"},
        BadCase{R"({"prompt": ["a", 1]})", "prompt"}, BadCase{R"({"prompt": [1, "a"]})", "prompt"},
        BadCase{R"({"prompt": [[1], "a"]})", "prompt"}, BadCase{R"({"prompt": [1.5]})", "prompt"},
        BadCase{R"({"prompt": [-1]})", "prompt"}, BadCase{R"({"prompt": [1000]})", "prompt"},
        BadCase{R"({"prompt": [[1], [5000]]})", "prompt"},
        BadCase{R"({"prompt": [18446744073709551615]})", "prompt"},
        BadCase{R"({"prompt": "x", "max_tokens": 0})", "max_tokens"},
        BadCase{R"({"prompt": "x", "max_tokens": -3})", "max_tokens"},
        BadCase{R"({"prompt": "x", "max_tokens": "10"})", "max_tokens"},
        BadCase{R"({"prompt": "x", "max_tokens": 1.5})", "max_tokens"},
        BadCase{R"({"prompt": "x", "max_tokens": 99999999999})", "max_tokens"},
        BadCase{R"({"prompt": "x", "temperature": "hot"})", "temperature"},
        BadCase{R"({"prompt": "x", "temperature": -0.1})", "temperature"},
        BadCase{R"({"prompt": "x", "top_p": 0})", "top_p"},
        BadCase{R"({"prompt": "x", "top_p": 1.5})", "top_p"},
        BadCase{R"({"prompt": "x", "top_k": -2})", "top_k"},
        BadCase{R"({"prompt": "x", "top_k": 2.5})", "top_k"},
        BadCase{R"({"prompt": "x", "min_p": 2})", "min_p"}, BadCase{R"({"prompt": "x", "n": 0})", "n"},
        BadCase{R"({"prompt": "x", "n": 17})", "n"}, BadCase{R"({"prompt": "x", "n": true})", "n"},
        BadCase{R"({"prompt": "x", "stream": "yes"})", "stream"},
        BadCase{R"({"prompt": "x", "stream_options": {"include_usage": true}})", "stream_options"},
        BadCase{R"({"prompt": "x", "stream": false, "stream_options": {}})", "stream_options"},
        BadCase{R"({"prompt": "x", "stream": true, "stream_options": 3})", "stream_options"},
        BadCase{R"({"prompt": "x", "stream": true, "stream_options": {"include_usage": 1}})",
                "include_usage"},
        BadCase{R"({"prompt": "x", "stop": 3})", "stop"},
        BadCase{R"({"prompt": "x", "stop": ["a", 3]})", "stop"},
        BadCase{R"({"prompt": "x", "stop": [""]})", "stop"},
        BadCase{R"({"prompt": "x", "stop_token_ids": 3})", "stop_token_ids"},
        BadCase{R"({"prompt": "x", "stop_token_ids": [-1]})", "stop_token_ids"},
        BadCase{R"({"prompt": "x", "stop_token_ids": [1000]})", "stop_token_ids"},
        BadCase{R"({"prompt": "x", "seed": "s"})", "seed"},
        BadCase{R"({"prompt": "x", "seed": 1.5})", "seed"}, BadCase{R"({"prompt": "x", "echo": 1})", "echo"},
        BadCase{R"({"prompt": "x", "logprobs": -1})", "logprobs"},
        BadCase{R"({"prompt": "x", "logprobs": 21})", "logprobs"},
        BadCase{R"({"prompt": "x", "logprobs": true})", "logprobs"},
        BadCase{R"({"prompt": "x", "prompt_logprobs": 21})", "prompt_logprobs"},
        BadCase{R"({"prompt": "x", "prompt_logprobs": -1})", "prompt_logprobs"},
        BadCase{R"({"prompt": "x", "prompt_logprobs": 1.5})", "prompt_logprobs"},
        BadCase{R"({"prompt": "x", "prompt_logprobs": 2, "stream": true})", "prompt_logprobs"},
        BadCase{R"({"prompt": "x", "presence_penalty": 3})", "presence_penalty"},
        BadCase{R"({"prompt": "x", "frequency_penalty": -3})", "frequency_penalty"},
        BadCase{R"({"prompt": "x", "repetition_penalty": 0})", "repetition_penalty"},
        BadCase{R"({"prompt": "x", "ignore_eos": "no"})", "ignore_eos"},
        BadCase{R"({"prompt": "x", "min_tokens": -1})", "min_tokens"},
        BadCase{R"({"prompt": "x", "max_tokens": 4, "min_tokens": 5})", "min_tokens"},
        BadCase{R"({"prompt": "x", "user": 7})", "user"},
        BadCase{R"({"prompt": "x", "logit_bias": [1, 2]})", "logit_bias"},
        BadCase{R"({"prompt": "x", "logit_bias": {"1000": 1}})", "logit_bias"},
        BadCase{R"({"prompt": "x", "logit_bias": {"-1": 1}})", "logit_bias"},
        BadCase{R"({"prompt": "x", "logit_bias": {"abc": 1}})", "logit_bias"},
        BadCase{R"({"prompt": "x", "logit_bias": {"": 1}})", "logit_bias"},
        BadCase{R"({"prompt": "x", "logit_bias": {"5": 100.5}})", "logit_bias"},
        BadCase{R"({"prompt": "x", "logit_bias": {"5": -101}})", "logit_bias"},
        BadCase{R"({"prompt": "x", "logit_bias": {"5": "1"}})", "logit_bias"},
        BadCase{R"({"prompt": "x", "logit_bias": {"7": 1, "07": 2}})", "logit_bias"},
        BadCase{R"({"prompt": "x", "return_tokens_as_token_ids": 1})", "return_tokens_as_token_ids"},
        BadCase{R"({"prompt": "x", "skip_special_tokens": "no"})", "skip_special_tokens"},
        BadCase{R"({"prompt": "x", "suffix": "tail"})", "suffix"},
        BadCase{R"({"prompt": "x", "suffix": 3})", "suffix"},
        BadCase{R"({"prompt": "x", "best_of": 2})", "best_of"},
        BadCase{R"({"prompt": "x", "n": 2, "best_of": 3})", "best_of"},
        BadCase{R"({"prompt": "x", "n": 2, "best_of": 1})", "best_of"},
        BadCase{R"({"prompt": "x", "best_of": "1"})", "best_of"},
        BadCase{R"({"prompt": "x", "model": 7})", "model"}));

TEST(CompletionProtocol, PromptLogprobsAndEchoWithLogprobs) {
  EXPECT_EQ(parse_ok(R"({"prompt": "x", "prompt_logprobs": 20})").prompt_logprobs, 20);
  EXPECT_EQ(parse_ok(R"({"prompt": "x", "prompt_logprobs": 0})").prompt_logprobs, 0);
  EXPECT_FALSE(parse_ok(R"({"prompt": "x", "prompt_logprobs": null})").prompt_logprobs);
  // vLLM accepts 0 with a stream and returns nothing for it.
  EXPECT_FALSE(parse_ok(R"({"prompt": "x", "prompt_logprobs": 0, "stream": true})").prompt_logprobs);
  const CompletionRequest echo = parse_ok(R"({"prompt": "x", "echo": true, "logprobs": 3})");
  EXPECT_TRUE(echo.echo);
  EXPECT_EQ(echo.logprobs, 3);
  EXPECT_FALSE(echo.prompt_logprobs);  // the job asks the engine for the echo's prompt logprobs
}

// max_tokens 0 is vLLM's "echo without generation" (lm-eval's loglikelihood requests): only with
// echo; without it still a 400 (BadRequests above).
TEST(CompletionProtocol, MaxTokensZeroOnlyWithEcho) {
  const CompletionRequest scored = parse_ok(R"({"prompt": "x", "echo": true, "max_tokens": 0, "logprobs": 1})");
  EXPECT_EQ(scored.max_tokens, 0);
  EXPECT_TRUE(scored.echo_only());
  EXPECT_FALSE(parse_ok(R"({"prompt": "x", "echo": true, "max_tokens": 1})").echo_only());
  EXPECT_FALSE(parse_ok(R"({"prompt": "x", "max_tokens": 1})").echo_only());
}

TEST(CompletionProtocol, LogitBiasAndTokenOptions) {
  CompletionRequest r = parse_ok(
      R"({"prompt": "x", "logit_bias": {"999": -100, "12": 2.5, "0": 100}, "return_tokens_as_token_ids": true,)"
      R"( "skip_special_tokens": false})");
  using Bias = std::vector<std::pair<std::int32_t, float>>;
  EXPECT_EQ(r.logit_bias, (Bias{{0, 100.0f}, {12, 2.5f}, {999, -100.0f}}));  // ids ascending
  EXPECT_TRUE(r.return_tokens_as_token_ids);
  EXPECT_FALSE(r.skip_special_tokens);
  CompletionRequest defaults = parse_ok(R"({"prompt": "x", "logit_bias": {}})");
  EXPECT_TRUE(defaults.logit_bias.empty());
  EXPECT_FALSE(defaults.return_tokens_as_token_ids);
  EXPECT_TRUE(defaults.skip_special_tokens);
  // Accepted forms of the fields this server does not implement: nothing to do.
  EXPECT_EQ(parse_ok(R"({"prompt": "x", "suffix": "", "best_of": 1})").n, 1);
  EXPECT_EQ(parse_ok(R"({"prompt": "x", "n": 3, "best_of": 3, "suffix": null})").n, 3);
  EXPECT_NE(parse_error(R"({"prompt": "x", "best_of": 4})").message.find("not supported"), std::string::npos);
}

TEST(CompletionProtocol, UnknownModelIs404) {
  ApiError e = parse_error(R"({"prompt": "x", "model": "gpt-4"})");
  EXPECT_EQ(e.status, 404);
  EXPECT_EQ(e.param, "model");
  EXPECT_EQ(e.code, "model_not_found");
  EXPECT_NE(e.message.find("gpt-4"), std::string::npos);
}

TEST(CompletionProtocol, TooManyPrompts) {
  std::string body = R"({"prompt": [)";
  for (int i = 0; i < 65; ++i) body += std::string(i ? "," : "") + "\"p\"";
  body += "]}";
  EXPECT_EQ(parse_error(body).param, "prompt");
}

TEST(CompletionProtocol, ContextLengthNamesBothNumbers) {
  EXPECT_FALSE(check_context_length(100, 28, 128).has_value());
  std::optional<ApiError> e = check_context_length(100, 29, 128);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->status, 400);
  EXPECT_EQ(e->code, "context_length_exceeded");
  EXPECT_NE(e->message.find("100"), std::string::npos) << e->message;
  EXPECT_NE(e->message.find("29"), std::string::npos) << e->message;
  EXPECT_NE(e->message.find("128"), std::string::npos) << e->message;
  EXPECT_TRUE(check_context_length(0, 1, 128).has_value());
}

TEST(ApiErrorBody, HasOpenAIShape) {
  nlohmann::json body = nlohmann::json::parse(error_body_json(ApiError::invalid_request("bad n", "n")));
  EXPECT_EQ(body["error"]["message"], "bad n");
  EXPECT_EQ(body["error"]["type"], "invalid_request_error");
  EXPECT_EQ(body["error"]["param"], "n");
  EXPECT_TRUE(body["error"]["code"].is_null());
  nlohmann::json e404 = nlohmann::json::parse(error_body_json(ApiError::not_found("no route")));
  EXPECT_TRUE(e404["error"]["param"].is_null());
  EXPECT_EQ(ApiError::unauthorized("x").status, 401);
  EXPECT_EQ(ApiError::method_not_allowed("x").status, 405);
  EXPECT_EQ(ApiError::body_too_large("x").status, 413);
  EXPECT_EQ(ApiError::too_many_requests("x").status, 429);
  EXPECT_EQ(ApiError::unavailable("x").status, 503);
}

}  // namespace
}  // namespace pagedserve
