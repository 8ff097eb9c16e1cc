// Fuzzes the chat-template engine (chat_template/): the input up to the first NUL is template
// source (lexer, parser), rendered against a conversation with a system prompt, tool calls, a tool
// result and non-ASCII text, plus the variables of the JSON object after the NUL when there is
// one (they replace the conversation's). Construction ends in a program or a TemplateError;
// rendering in text or an error the server answers with a 400 (server/chat_format.cpp).
#include <cstddef>
#include <cstdint>
#include <ctime>
#include <exception>
#include <nlohmann/json.hpp>
#include <optional>
#include <string_view>

#include "chat_template/chat_template.h"
#include "chat_template/template_error.h"

using namespace pagedserve;
using nlohmann::ordered_json;

namespace {

ordered_json conversation() {
  return ordered_json::parse(R"({
    "messages": [
      {"role": "system", "content": "You are terse."},
      {"role": "user", "content": "Weather in Zürich? 天气"},
      {"role": "assistant", "content": "",
       "tool_calls": [{"id": "call_1", "type": "function",
                       "function": {"name": "get_weather", "arguments": {"city": "Zürich"}}}]},
      {"role": "tool", "tool_call_id": "call_1", "content": "{\"temp\": 21}"},
      {"role": "user", "content": [{"type": "text", "text": "And tomorrow?"}]}],
    "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather",
               "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
    "add_generation_prompt": true, "enable_thinking": false,
    "bos_token": "<s>", "eos_token": "</s>"})");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const ordered_json base = conversation();
  std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::size_t split = input.find('\0');
  std::string_view source = input.substr(0, split);
  ordered_json variables = base;
  if (split != std::string_view::npos) {
    ordered_json extra = ordered_json::parse(input.substr(split + 1), nullptr, false);
    if (extra.is_object()) variables.update(extra);
  }
  std::optional<ChatTemplate> chat_template;
  try {
    chat_template.emplace(source);
  } catch (const chat_template::TemplateError&) {
    return 0;
  }
  try {
    chat_template->render(variables, std::time_t(1767225600));
  } catch (const chat_template::TemplateError&) {
  } catch (const std::exception&) {  // the server's backstop answers these with a 400 as well
  }
  return 0;
}
