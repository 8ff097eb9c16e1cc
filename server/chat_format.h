// What POST /v1/chat/completions needs from the model: its chat template (parsed once at
// startup) and the tokenizer's special tokens, and the one operation on them — messages in,
// prompt text out. A model without a usable template still serves /v1/completions; chat
// requests then get a 400 that says how to give it one.
//
// Threads: built once on the main thread, then shared read-only; render() from any thread.
#pragma once

#include <ctime>
#include <memory>
#include <optional>
#include <string>
#include <variant>

#include "chat_template/chat_template.h"
#include "server/api_error.h"
#include "server/chat_tool_calls.h"

namespace pagedserve {

struct ChatPromptInput;
struct ModelChatTemplate;

class ChatFormat {
 public:
  // Reads the model directory's template (tokenizer_config.json `chat_template` or
  // chat_template.jinja), or `template_file` instead when given (--chat-template). A template that
  // does not parse is logged and answered per request; a malformed tokenizer_config.json or an
  // unreadable template file throws SetupError.
  static std::shared_ptr<const ChatFormat> load(const std::string& model_dir,
                                                const std::string& template_file = {});
  // From template source directly (tests); `special_tokens_json` is a JSON object text.
  static std::shared_ptr<const ChatFormat> from_source(std::optional<std::string> source,
                                                       const std::string& special_tokens_json = "{}");
  ~ChatFormat();

  // The prompt text (special tokens included: tokenize it without adding BOS), or a 400.
  std::variant<std::string, ApiError> render(const ChatPromptInput& input) const;

  // How this model writes tool calls, judged from its template's text (server/chat_tool_calls.h).
  ToolCallFormat tool_call_format() const { return tool_call_format_; }

 private:
  ChatFormat() = default;
  void parse(std::optional<std::string> source, std::string origin);

  std::optional<ChatTemplate> template_;
  ToolCallFormat tool_call_format_ = ToolCallFormat::llama3_json;
  std::string unavailable_reason_;  // why there is no template, for the 400
  std::unique_ptr<ModelChatTemplate> model_;
};

}  // namespace pagedserve
