// POST /v1/chat/completions: body parsing (messages, text parts, chat-only fields mapped onto the
// completions fields), rendering through a ChatFormat, and the chat wire shapes.
#include "server/chat_protocol.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "chat_template/chat_prompt.h"
#include "server/chat_format.h"
#include "server/chat_response.h"

namespace pagedserve {
namespace {

using nlohmann::json;

ProtocolLimits limits() {
  ProtocolLimits l;
  l.served_model_name = "tiny";
  l.vocab_size = 1000;
  l.max_model_len = 128;
  return l;
}

ChatRequest parse_ok(const std::string& body) {
  auto result = parse_chat_request(body, limits());
  if (auto* error = std::get_if<ApiError>(&result)) {
    ADD_FAILURE() << "unexpected error for " << body << ": " << error->message;
    return {};
  }
  return std::get<ChatRequest>(std::move(result));
}

ApiError parse_error(const std::string& body) {
  auto result = parse_chat_request(body, limits());
  if (!std::holds_alternative<ApiError>(result)) {
    ADD_FAILURE() << "expected an error for " << body;
    return {};
  }
  return std::get<ApiError>(result);
}

TEST(ChatProtocol, MessagesAndDefaults) {
  ChatRequest r =
      parse_ok(R"({"messages":[{"role":"system","content":"s"},{"role":"user","content":"hi"}]})");
  ASSERT_TRUE(r.prompt);
  EXPECT_EQ(r.prompt->messages.size(), 2u);
  EXPECT_EQ(r.prompt->messages[1]["content"], "hi");
  EXPECT_TRUE(r.prompt->add_generation_prompt);
  EXPECT_FALSE(r.prompt->continue_final_message);
  EXPECT_TRUE(r.prompt->tools.is_null());
  EXPECT_FALSE(r.max_tokens_given);
  EXPECT_TRUE(r.completion.prompts.empty());
  EXPECT_FALSE(r.completion.logprobs);
}

TEST(ChatProtocol, TextPartsAreJoinedOtherPartsRefused) {
  ChatRequest r = parse_ok(
      R"({"messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}]})");
  EXPECT_EQ(r.prompt->messages[0]["content"], "a\nb");
  ApiError e =
      parse_error(R"({"messages":[{"role":"user","content":[{"type":"image_url","image_url":{}}]}]})");
  EXPECT_EQ(e.status, 400);
  EXPECT_EQ(e.param, "messages[0].content");
  EXPECT_NE(e.message.find("image_url"), std::string::npos);
}

TEST(ChatProtocol, ChatFieldsMapOntoCompletionFields) {
  ChatRequest r = parse_ok(
      R"({"messages":[{"role":"user","content":"x"}],"max_completion_tokens":7,"logprobs":true,"top_logprobs":3,)"
      R"("n":2,"seed":5,"stop":["\n"],"temperature":0,"stream":true,"stream_options":{"include_usage":true},)"
      R"("chat_template_kwargs":{"enable_thinking":false},"tools":[{"type":"function","function":{"name":"f"}}]})");
  EXPECT_TRUE(r.max_tokens_given);
  EXPECT_EQ(r.completion.max_tokens, 7);
  EXPECT_EQ(r.completion.logprobs, 3);
  EXPECT_EQ(r.completion.n, 2);
  EXPECT_EQ(r.completion.seed, 5u);
  EXPECT_EQ(r.completion.stop, std::vector<std::string>{"\n"});
  EXPECT_TRUE(r.completion.stream && r.completion.include_usage);
  EXPECT_EQ(r.prompt->template_kwargs["enable_thinking"], false);
  EXPECT_EQ(r.prompt->tools.size(), 1u);
  EXPECT_EQ(parse_ok(R"({"messages":[{"role":"user","content":"x"}],"logprobs":true})").completion.logprobs,
            0);
  // Without max_tokens, min_tokens is checked against the context, not completions' default 16.
  EXPECT_EQ(parse_ok(R"({"messages":[{"role":"user","content":"x"}],"min_tokens":40})").completion.min_tokens,
            40);
}

TEST(ChatProtocol, BadBodiesNameTheField) {
  EXPECT_EQ(parse_error(R"({"messages":[]})").param, "messages");
  EXPECT_EQ(parse_error(R"({"messages":"hi"})").param, "messages");
  EXPECT_EQ(parse_error(R"({"messages":[{"role":"bot","content":"x"}]})").param, "messages[0].role");
  EXPECT_EQ(parse_error(R"({"messages":[{"role":"user","content":"x"}],"max_completion_tokens":0})").param,
            "max_completion_tokens");
  EXPECT_EQ(parse_error(R"({"messages":[{"role":"user","content":"x"}],"top_logprobs":2})").param,
            "top_logprobs");
  EXPECT_EQ(parse_error(R"({"messages":[{"role":"user","content":"x"}],"logprobs":2})").param, "logprobs");
  EXPECT_EQ(parse_error(R"({"messages":[{"role":"user","content":"x"}],"add_generation_prompt":true,)"
                        R"("continue_final_message":true})")
                .param,
            "continue_final_message");
  EXPECT_EQ(parse_error(R"({"messages":[{"role":"user","content":"x"}],"model":"other"})").status, 404);
  EXPECT_EQ(parse_error("{bad").code, "invalid_json");
}

TEST(ChatProtocol, ToolsAndToolChoice) {
  const std::string messages = R"({"messages":[{"role":"user","content":"x"}])";
  const std::string tools =
      R"(,"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}])";
  EXPECT_FALSE(parse_ok(messages + "}").parse_tool_calls);
  ChatRequest r = parse_ok(messages + tools + "}");
  EXPECT_TRUE(r.parse_tool_calls);
  EXPECT_EQ(r.prompt->tools[0]["function"]["name"], "get_weather");
  EXPECT_TRUE(parse_ok(messages + tools + R"(,"tool_choice":"auto"})").parse_tool_calls);
  EXPECT_TRUE(parse_ok(messages + tools + R"(,"tool_choice":"required"})").parse_tool_calls);
  EXPECT_TRUE(
      parse_ok(messages + tools + R"(,"tool_choice":{"type":"function","function":{"name":"get_weather"}}})")
          .parse_tool_calls);
  ChatRequest none = parse_ok(messages + tools + R"(,"tool_choice":"none","parallel_tool_calls":false})");
  EXPECT_FALSE(none.parse_tool_calls);
  EXPECT_EQ(none.prompt->tools.size(), 1u);  // still shown to the template
  EXPECT_FALSE(parse_ok(messages + R"(,"tool_choice":"none"})").parse_tool_calls);

  EXPECT_EQ(parse_error(messages + R"(,"tools":{}})").param, "tools");
  EXPECT_EQ(parse_error(messages + R"(,"tools":[{"type":"code"}]})").param, "tools[0]");
  EXPECT_EQ(parse_error(messages + R"(,"tools":[{"type":"function"}]})").param, "tools[0].function");
  EXPECT_EQ(parse_error(messages + R"(,"tools":[{"type":"function","function":{"name":""}}]})").param,
            "tools[0].function.name");
  EXPECT_EQ(
      parse_error(messages + R"(,"tools":[{"type":"function","function":{"name":"f","parameters":3}}]})")
          .param,
      "tools[0].function.parameters");
  EXPECT_EQ(parse_error(messages + tools + R"(,"tool_choice":"sometimes"})").param, "tool_choice");
  EXPECT_EQ(parse_error(messages + tools + R"(,"tool_choice":3})").param, "tool_choice");
  EXPECT_EQ(
      parse_error(messages + tools + R"(,"tool_choice":{"type":"function","function":{"name":"other"}}})")
          .param,
      "tool_choice");
  EXPECT_EQ(parse_error(messages + R"(,"tool_choice":"auto"})").param, "tool_choice");
  EXPECT_EQ(parse_error(messages + tools + R"(,"parallel_tool_calls":"yes"})").param, "parallel_tool_calls");
}

TEST(ChatProtocol, AssistantToolCallArgumentsBecomeObjects) {
  ChatRequest r = parse_ok(
      R"({"messages":[{"role":"user","content":"x"},{"role":"assistant","content":null,"tool_calls":[)"
      R"({"id":"call_1","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}},)"
      R"({"id":"call_2","type":"function","function":{"name":"g","arguments":"not json"}}]},)"
      R"({"role":"tool","tool_call_id":"call_1","content":"2"}]})");
  const auto& calls = r.prompt->messages[1]["tool_calls"];
  EXPECT_EQ(calls[0]["function"]["arguments"]["a"], 1);
  EXPECT_EQ(calls[1]["function"]["arguments"], "not json");
}

TEST(ChatFormat, ToolCallFormatFollowsTheTemplate) {
  EXPECT_EQ(ChatFormat::from_source("{{ '<tool_call>' }}")->tool_call_format(), ToolCallFormat::hermes);
  EXPECT_EQ(ChatFormat::from_source("{{ messages }}")->tool_call_format(), ToolCallFormat::llama3_json);
}

TEST(ChatFormat, RendersTheTemplateAndAnswersFailuresWith400) {
  auto format = ChatFormat::from_source(
      "{{ bos_token }}{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}"
      "{% if add_generation_prompt %}<assistant>{% endif %}"
      "{% if messages|length > 2 %}{{ raise_exception('too many') }}{% endif %}",
      R"({"bos_token":"<s>"})");
  ChatRequest r = parse_ok(R"({"messages":[{"role":"user","content":"hi"}]})");
  auto prompt = format->render(*r.prompt);
  ASSERT_TRUE(std::holds_alternative<std::string>(prompt));
  EXPECT_EQ(std::get<std::string>(prompt), "<s><user>hi<assistant>");

  ChatRequest many = parse_ok(
      R"({"messages":[{"role":"user","content":"a"},{"role":"assistant","content":"b"},{"role":"user","content":"c"}]})");
  auto failed = format->render(*many.prompt);
  ASSERT_TRUE(std::holds_alternative<ApiError>(failed));
  EXPECT_EQ(std::get<ApiError>(failed).status, 400);
  EXPECT_NE(std::get<ApiError>(failed).message.find("too many"), std::string::npos);

  auto missing = ChatFormat::from_source(std::nullopt)->render(*r.prompt);
  ASSERT_TRUE(std::holds_alternative<ApiError>(missing));
  EXPECT_NE(std::get<ApiError>(missing).message.find("chat_template"), std::string::npos);

  auto broken = ChatFormat::from_source("{% if %}")->render(*r.prompt);
  ASSERT_TRUE(std::holds_alternative<ApiError>(broken));
}

TEST(ChatResponse, WireShapes) {
  CompletionHeader header{"chatcmpl-1", 42, "tiny"};
  ChoiceLogprobs lp;
  lp.tokens = {"Hi"};
  lp.token_logprobs = {-0.5f};
  lp.top_logprobs = {{{"Hi", -0.5f}, {"Yo", -1.0f}}};
  lp.text_offset = {0};
  json body = json::parse(chat_response_json(header, {{0, "Hi", lp, "stop"}}, {3, 1}));
  EXPECT_EQ(body["object"], "chat.completion");
  EXPECT_EQ(body["choices"][0]["message"], json({{"role", "assistant"}, {"content", "Hi"}}));
  EXPECT_EQ(body["choices"][0]["logprobs"]["content"][0]["bytes"], json({72, 105}));
  EXPECT_EQ(body["choices"][0]["logprobs"]["content"][0]["top_logprobs"][1]["token"], "Yo");
  EXPECT_EQ(body["usage"]["total_tokens"], 4);

  json role = json::parse(chat_role_chunk_json(header, 1));
  EXPECT_EQ(role["object"], "chat.completion.chunk");
  EXPECT_EQ(role["choices"][0]["delta"]["role"], "assistant");
  EXPECT_EQ(role["choices"][0]["index"], 1);
  json delta = json::parse(chat_chunk_json(header, {0, "x", std::nullopt, ""}));
  EXPECT_EQ(delta["choices"][0]["delta"], json({{"content", "x"}}));
  EXPECT_TRUE(delta["choices"][0]["finish_reason"].is_null());
  json last = json::parse(chat_chunk_json(header, {0, "", std::nullopt, "length"}));
  EXPECT_EQ(last["choices"][0]["delta"], json::object());
  EXPECT_EQ(last["choices"][0]["finish_reason"], "length");
  json usage = json::parse(chat_usage_chunk_json(header, {2, 3}));
  EXPECT_TRUE(usage["choices"].empty());
  EXPECT_EQ(usage["usage"]["completion_tokens"], 3);
  EXPECT_EQ(make_chat_completion_id().rfind("chatcmpl-", 0), 0u);

  // prompt_logprobs: the first choice's, once, at the top level (vLLM's ChatCompletionResponse).
  CompletionChoice with_prompt{0, "Hi", std::nullopt, "stop"};
  with_prompt.prompt_logprobs =
      PromptLogprobs{std::nullopt, std::vector<PromptLogprobEntry>{{7, -1.5f, 3, "x"}}};
  json scored = json::parse(chat_response_json(header, {with_prompt}, {2, 1}));
  ASSERT_EQ(scored["prompt_logprobs"].size(), 2u);
  EXPECT_TRUE(scored["prompt_logprobs"][0].is_null());
  EXPECT_EQ(scored["prompt_logprobs"][1]["7"],
            json({{"logprob", -1.5}, {"rank", 3}, {"decoded_token", "x"}}));
  EXPECT_FALSE(scored["choices"][0].contains("prompt_logprobs"));
  EXPECT_FALSE(body.contains("prompt_logprobs"));
}

TEST(ChatProtocol, PromptLogprobsPassThroughAndAreCheckedAsCompletions) {
  EXPECT_EQ(parse_ok(R"({"messages":[{"role":"user","content":"hi"}],"prompt_logprobs":3})")
                .completion.prompt_logprobs,
            3);
  auto over =
      parse_chat_request(R"({"messages":[{"role":"user","content":"hi"}],"prompt_logprobs":25})", limits());
  ASSERT_TRUE(std::holds_alternative<ApiError>(over));
  EXPECT_EQ(std::get<ApiError>(over).param, "prompt_logprobs");
  auto streamed = parse_chat_request(
      R"({"messages":[{"role":"user","content":"hi"}],"prompt_logprobs":1,"stream":true})", limits());
  ASSERT_TRUE(std::holds_alternative<ApiError>(streamed));
}

}  // namespace
}  // namespace pagedserve
