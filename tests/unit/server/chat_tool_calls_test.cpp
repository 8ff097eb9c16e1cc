// Tool calls in chat output: Hermes <tool_call> blocks and Llama 3's JSON form, whole and streamed
// in pieces, with malformed or unterminated calls left as content.
#include "server/chat_tool_calls.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace pagedserve {
namespace {

using nlohmann::json;

void expect_call(const ToolCall& call, const std::string& name, const json& arguments) {
  EXPECT_EQ(call.name, name);
  EXPECT_EQ(json::parse(call.arguments), arguments);
  EXPECT_EQ(call.id.rfind("call_", 0), 0u);
  EXPECT_EQ(call.id.size(), 29u);
}

TEST(ToolCallFormat, ChosenByTheTemplateText) {
  EXPECT_EQ(tool_call_format_for("...<tool_call>\n{{ tool_call | tojson }}</tool_call>"),
            ToolCallFormat::hermes);
  EXPECT_EQ(tool_call_format_for("<|start_header_id|>ipython"), ToolCallFormat::llama3_json);
}

TEST(ParseToolCalls, HermesSeveralCallsWithTextAround) {
  ParsedToolCalls parsed =
      parse_tool_calls(ToolCallFormat::hermes,
                       "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": "
                       "\"Paris\"}}\n</tool_call>\n"
                       "<tool_call>{\"name\": \"get_time\", \"arguments\": {}}</tool_call>\n");
  ASSERT_EQ(parsed.calls.size(), 2u);
  expect_call(parsed.calls[0], "get_weather", {{"city", "Paris"}});
  expect_call(parsed.calls[1], "get_time", json::object());
  EXPECT_NE(parsed.calls[0].id, parsed.calls[1].id);
  EXPECT_EQ(parsed.content, "Let me check.");

  ParsedToolCalls only = parse_tool_calls(
      ToolCallFormat::hermes, "<tool_call>{\"name\":\"f\",\"arguments\":\"{\\\"a\\\":[1,2]}\"}</tool_call>");
  ASSERT_EQ(only.calls.size(), 1u);
  expect_call(only.calls[0], "f", {{"a", {1, 2}}});
  EXPECT_EQ(only.content, "");
}

TEST(ParseToolCalls, MalformedOrUnterminatedIsContent) {
  for (const std::string text : {
           "Hi <tool_call>{\"name\": \"f\", \"arguments\": {</tool_call>",  // bad JSON
           "<tool_call>{\"arguments\": {}}</tool_call>",                    // no name
           "<tool_call>{\"name\": \"f\", \"arguments\": [1]}</tool_call>",  // arguments not an object
           "<tool_call>[1, 2]</tool_call>",
           "<tool_call>{\"name\": \"f\", \"arguments\": {}}",  // unterminated
           "<tool_call>{\"name\": \"f\", \"arguments\": {}}</tool_call><tool_call>oops</tool_call>",
           "plain text, no calls ",
       }) {
    ParsedToolCalls parsed = parse_tool_calls(ToolCallFormat::hermes, text);
    EXPECT_TRUE(parsed.calls.empty()) << text;
    EXPECT_EQ(parsed.content, text);
  }
}

TEST(ParseToolCalls, Llama3JsonForm) {
  ParsedToolCalls parsed = parse_tool_calls(
      ToolCallFormat::llama3_json, " {\"name\": \"get_weather\", \"parameters\": {\"city\": \"Oslo\"}}\n");
  ASSERT_EQ(parsed.calls.size(), 1u);
  expect_call(parsed.calls[0], "get_weather", {{"city", "Oslo"}});
  EXPECT_EQ(parsed.content, "");

  ParsedToolCalls tagged =
      parse_tool_calls(ToolCallFormat::llama3_json, "<|python_tag|>{\"name\": \"f\", \"parameters\": {}}");
  ASSERT_EQ(tagged.calls.size(), 1u);
  expect_call(tagged.calls[0], "f", json::object());

  for (const std::string text :
       {"The answer is {\"name\": \"f\"}", "{\"name\": \"f\", \"parameters\": {}} and more",
        "{\"parameters\": {}}", "{not json"}) {
    ParsedToolCalls plain = parse_tool_calls(ToolCallFormat::llama3_json, text);
    EXPECT_TRUE(plain.calls.empty()) << text;
    EXPECT_EQ(plain.content, text);
  }
}

// Feeds `pieces` one by one, then finishes; returns the content and the calls in order.
struct Streamed {
  std::vector<std::string> content;  // one entry per non-empty content output
  std::vector<ToolCall> calls;
};

Streamed stream(ToolCallFormat format, const std::vector<std::string>& pieces) {
  ToolCallStream s(format);
  Streamed out;
  auto take = [&](ParsedToolCalls p) {
    if (!p.content.empty()) out.content.push_back(p.content);
    for (ToolCall& call : p.calls) out.calls.push_back(call);
  };
  for (const std::string& piece : pieces) take(s.feed(piece));
  take(s.finish());
  return out;
}

std::string joined(const Streamed& s) {
  std::string all;
  for (const std::string& c : s.content) all += c;
  return all;
}

TEST(ToolCallStream, HoldsBackAPossibleTagAndEmitsCallsWhenComplete) {
  ToolCallStream s(ToolCallFormat::hermes);
  EXPECT_EQ(s.feed("Sure").content, "Sure");
  EXPECT_EQ(s.feed(". <tool").content, ".");  // "<tool" may start a call; the space waits for content
  ParsedToolCalls inside = s.feed("_call>{\"name\": \"f\", ");
  EXPECT_EQ(inside.content, "");
  EXPECT_TRUE(inside.calls.empty());
  ParsedToolCalls done = s.feed("\"arguments\": {\"x\": 1}}</tool_call>\n");
  ASSERT_EQ(done.calls.size(), 1u);
  expect_call(done.calls[0], "f", {{"x", 1}});
  EXPECT_EQ(done.content, "");
  EXPECT_TRUE(s.called());
  ParsedToolCalls end = s.finish();
  EXPECT_EQ(end.content, "");  // trailing whitespace after a call is dropped
  EXPECT_TRUE(end.calls.empty());
}

TEST(ToolCallStream, PlainTextFlowsAndFalseStartsAreReleased) {
  Streamed plain = stream(ToolCallFormat::hermes, {"Hello", " world", "\n"});
  EXPECT_EQ(joined(plain), "Hello world\n");
  EXPECT_EQ(plain.content.front(), "Hello");
  EXPECT_TRUE(plain.calls.empty());

  Streamed false_start = stream(ToolCallFormat::hermes, {"a <to", "ol> b"});
  EXPECT_EQ(joined(false_start), "a <tool> b");
  EXPECT_TRUE(false_start.calls.empty());
}

TEST(ToolCallStream, SeveralCallsMalformedAndUnterminated) {
  Streamed two =
      stream(ToolCallFormat::hermes, {"<tool_call>{\"name\":\"a\",\"arguments\":{}}</tool_call>\n<tool_",
                                      "call>{\"name\":\"b\",\"arguments\":{\"k\":\"v\"}}</tool_call>"});
  ASSERT_EQ(two.calls.size(), 2u);
  expect_call(two.calls[0], "a", json::object());
  expect_call(two.calls[1], "b", {{"k", "v"}});
  EXPECT_TRUE(two.content.empty());

  const std::string bad = "<tool_call>{\"name\": oops}</tool_call>";
  Streamed malformed = stream(ToolCallFormat::hermes, {bad.substr(0, 15), bad.substr(15)});
  EXPECT_TRUE(malformed.calls.empty());
  EXPECT_EQ(joined(malformed), bad);

  Streamed unterminated =
      stream(ToolCallFormat::hermes, {"x <tool_call>{\"name\": \"f\"", ", \"arguments\": {}}"});
  EXPECT_TRUE(unterminated.calls.empty());
  EXPECT_EQ(joined(unterminated), "x <tool_call>{\"name\": \"f\", \"arguments\": {}}");

  // Every split point of a call between text gives the same call and content as the whole text.
  const std::string text = "Hi <tool_call>{\"name\":\"f\",\"arguments\":{\"n\":1}}</tool_call> bye";
  for (std::size_t cut = 0; cut <= text.size(); ++cut) {
    Streamed split = stream(ToolCallFormat::hermes, {text.substr(0, cut), text.substr(cut)});
    ASSERT_EQ(split.calls.size(), 1u) << cut;
    EXPECT_EQ(joined(split), "Hi  bye") << cut;
  }
  EXPECT_EQ(parse_tool_calls(ToolCallFormat::hermes, text).content, "Hi  bye");
}

TEST(ToolCallStream, Llama3HoldsAJsonStartUntilTheEnd) {
  Streamed call =
      stream(ToolCallFormat::llama3_json, {"<|python", "_tag|>{\"name\": \"f\", ", "\"parameters\": {}}"});
  ASSERT_EQ(call.calls.size(), 1u);
  expect_call(call.calls[0], "f", json::object());
  EXPECT_TRUE(call.content.empty());

  Streamed text = stream(ToolCallFormat::llama3_json, {"  ", "Hello", " there"});
  EXPECT_EQ(text.content, (std::vector<std::string>{"  Hello", " there"}));
  EXPECT_TRUE(text.calls.empty());

  Streamed broken = stream(ToolCallFormat::llama3_json, {"{\"name\": ", "\"f\""});
  EXPECT_TRUE(broken.calls.empty());
  EXPECT_EQ(joined(broken), "{\"name\": \"f\"");
}

}  // namespace
}  // namespace pagedserve
