// Server-sent events as OpenAI-compatible servers stream them, and what one completions chunk
// says. The parser is fed bytes as they come off the socket, in pieces of any size (a read may
// end inside a line or between "\r" and "\n"), and returns the `data` of each complete event.
// One parser per response; not thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pagedserve::bench {

class SseParser {
 public:
  // The data payloads (multi-line `data:` fields joined by "\n") of the events completed by
  // `bytes`, in order. Comments (":...") and other fields (event, id, retry) are skipped.
  std::vector<std::string> feed(std::string_view bytes);

 private:
  void take_line(std::string_view line, std::vector<std::string>& events);

  std::string pending_;  // bytes after the last complete line
  std::string data_;     // the current event's data so far
  bool has_data_ = false;
};

// One `data:` payload of a /v1/completions (or chat) stream.
struct CompletionChunk {
  bool done = false;                 // "[DONE]"
  std::string text;                  // choices[0].text, or choices[0].delta.content for chat
  std::optional<int> prompt_tokens;  // usage, when the chunk carries it
  std::optional<int> completion_tokens;
  std::optional<std::string> error;  // an "error" object's message, or why the JSON is unreadable
};

CompletionChunk parse_completion_chunk(std::string_view data);

}  // namespace pagedserve::bench
