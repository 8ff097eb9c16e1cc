#include "bench/serve/sse_stream.h"

#include <gtest/gtest.h>

namespace pagedserve::bench {
namespace {

using Events = std::vector<std::string>;

// What our server and vLLM send for a completions stream with include_usage.
const std::string kStream =
    "data: {\"id\":\"cmpl-1\",\"object\":\"text_completion\",\"choices\":[{\"index\":0,\"text\":\"Hel\","
    "\"finish_reason\":null}]}\n\n"
    "data: {\"id\":\"cmpl-1\",\"object\":\"text_completion\",\"choices\":[{\"index\":0,\"text\":\"lo\","
    "\"finish_reason\":\"length\"}]}\n\n"
    "data: {\"id\":\"cmpl-1\",\"object\":\"text_completion\",\"choices\":[],"
    "\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2,\"total_tokens\":7}}\n\n"
    "data: [DONE]\n\n";

TEST(SseParser, WholeStreamAtOnce) {
  SseParser p;
  const Events events = p.feed(kStream);
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[3], "[DONE]");
}

// TCP hands the stream over in arbitrary pieces; one byte at a time is the worst case.
TEST(SseParser, ByteByByteGivesTheSameEventsEachWhenItsBlankLineArrives) {
  SseParser whole;
  const Events expected = whole.feed(kStream);
  SseParser p;
  Events got;
  for (size_t i = 0; i < kStream.size(); ++i) {
    Events now = p.feed(kStream.substr(i, 1));
    // An event is complete exactly at the second '\n' of its terminator, never earlier.
    if (!now.empty()) {
      EXPECT_EQ(kStream.substr(i - 1, 2), "\n\n");
    }
    got.insert(got.end(), now.begin(), now.end());
  }
  EXPECT_EQ(got, expected);
}

TEST(SseParser, CrLfSplitAcrossReadsMultiLineDataCommentsAndOtherFields) {
  SseParser p;
  EXPECT_TRUE(p.feed(": keep-alive\r\n\r\nevent: message\r\nid: 3\r\ndata: first\r").empty());
  EXPECT_TRUE(p.feed("\ndata:second\r").empty());
  EXPECT_EQ(p.feed("\n\r\n"), Events{"first\nsecond"});
  EXPECT_EQ(p.feed("data: x\n\n"), Events{"x"});
  EXPECT_TRUE(p.feed("\n\n").empty()) << "blank lines without data make no event";
}

TEST(CompletionChunk, TextUsageDoneAndChat) {
  SseParser p;
  const Events events = p.feed(kStream);
  EXPECT_EQ(parse_completion_chunk(events[0]).text, "Hel");
  EXPECT_FALSE(parse_completion_chunk(events[0]).completion_tokens.has_value());
  const CompletionChunk usage = parse_completion_chunk(events[2]);
  EXPECT_EQ(usage.text, "");
  EXPECT_EQ(usage.prompt_tokens, 5);
  EXPECT_EQ(usage.completion_tokens, 2);
  EXPECT_TRUE(parse_completion_chunk(events[3]).done);
  EXPECT_EQ(parse_completion_chunk(R"({"choices":[{"index":0,"delta":{"content":"hi"}}]})").text, "hi");
  EXPECT_EQ(parse_completion_chunk(R"({"choices":[{"index":0,"text":"a"}],"usage":null})").text, "a");
}

TEST(CompletionChunk, ErrorsAreReported) {
  const CompletionChunk e = parse_completion_chunk(R"({"error":{"message":"out of memory","type":"x"}})");
  ASSERT_TRUE(e.error.has_value());
  EXPECT_EQ(*e.error, "out of memory");
  EXPECT_TRUE(parse_completion_chunk("{not json").error.has_value());
  EXPECT_FALSE(parse_completion_chunk(R"({"choices":[]})").error.has_value());
}

}  // namespace
}  // namespace pagedserve::bench
