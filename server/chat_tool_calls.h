// Tool calls in a chat model's output, turned into OpenAI's `tool_calls`. Two formats, chosen by
// the chat template (tool_call_format_for): Hermes-style `<tool_call>{"name": ..., "arguments":
// {...}}</tool_call>` blocks, any number, with text around them (Qwen2/2.5/3 and every template
// that mentions "<tool_call>"), and otherwise Llama 3's JSON form, where the whole message is
// `{"name": ..., "parameters": {...}}`, optionally after `<|python_tag|>`. Output that is not a
// well-formed call stays plain content: a malformed or unterminated call is never an error.
//
// Pure functions and a per-choice stream object; JSON stays in the .cpp. A ToolCallStream belongs
// to one choice and is used from one thread at a time (the connection's strand).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace pagedserve {

enum class ToolCallFormat { none, hermes, llama3_json };

// "<tool_call>" in the template: Hermes; any other template: Llama 3's JSON form.
ToolCallFormat tool_call_format_for(std::string_view template_source);

struct ToolCall {
  std::string id;  // "call_" + 24 hex digits
  std::string name;
  std::string arguments;  // a JSON object, as text
};

struct ParsedToolCalls {
  std::string content;          // the text outside the calls, whitespace-trimmed when calls were found
  std::vector<ToolCall> calls;  // empty: no (well-formed) calls; `content` is then the text unchanged
};

// The whole output of one choice.
ParsedToolCalls parse_tool_calls(ToolCallFormat format, std::string_view text);

// The streaming form: text that may be the start of a call is held back until the call completes
// (then it comes out as a ToolCall) or turns out not to be one (then it comes out as content).
// Whitespace around calls is dropped, as parse_tool_calls trims it.
class ToolCallStream {
 public:
  explicit ToolCallStream(ToolCallFormat format) : format_(format) {}

  ParsedToolCalls feed(std::string_view text);  // the next delta's text
  ParsedToolCalls finish();                     // end of output: whatever is still held
  bool called() const { return num_calls_ > 0; }

 private:
  ParsedToolCalls scan_hermes(bool at_end);
  void emit_content(ParsedToolCalls& out, std::string_view text, bool at_end);

  ToolCallFormat format_;
  std::string held_;        // text not yet emitted: a possible call, or trailing whitespace
  std::string whitespace_;  // content whitespace held until more content follows it
  bool content_started_ = false;
  bool llama_decided_ = false;  // llama3_json: whether the output is known to be plain content
  int num_calls_ = 0;
};

}  // namespace pagedserve
