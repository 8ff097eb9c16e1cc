#include "chat_template/chat_prompt.h"

#include "chat_template/template_builtins.h"
#include "chat_template/template_error.h"

namespace pagedserve {
namespace {

using nlohmann::ordered_json;

// The text continue_final_message keeps: the last message's content (or its last text part).
std::string final_message_text(const ordered_json& messages) {
  if (!messages.is_array() || messages.empty()) {
    throw chat_template::TemplateError("continue_final_message needs at least one message");
  }
  const ordered_json& content = messages.back().value("content", ordered_json());
  if (content.is_string()) return content.get<std::string>();
  if (content.is_array()) {
    for (auto it = content.rbegin(); it != content.rend(); ++it) {
      if (it->is_object() && it->contains("text") && (*it)["text"].is_string())
        return (*it)["text"].get<std::string>();
    }
  }
  throw chat_template::TemplateError("continue_final_message: the final message has no text content");
}

}  // namespace

std::string render_chat_prompt(const ChatTemplate& chat_template, const ordered_json& special_tokens,
                               const ChatPromptInput& input, std::time_t now) {
  if (input.continue_final_message && input.add_generation_prompt) {
    throw chat_template::TemplateError(
        "continue_final_message and add_generation_prompt cannot both be true: the first continues the last "
        "message, the second starts a new one");
  }
  ordered_json variables = ordered_json::object();
  for (auto it = special_tokens.begin(); it != special_tokens.end(); ++it) variables[it.key()] = it.value();
  for (auto it = input.template_kwargs.begin(); it != input.template_kwargs.end(); ++it) {
    variables[it.key()] = it.value();
  }
  variables["messages"] = input.messages;
  variables["tools"] = input.tools;
  variables["documents"] = nullptr;
  variables["add_generation_prompt"] = input.add_generation_prompt;
  std::string rendered = chat_template.render(variables, now);
  if (!input.continue_final_message) return rendered;

  const std::string message = final_message_text(input.messages);
  const std::string stripped = chat_template::python_strip(message, {}, true, true);
  const std::size_t at = rendered.rfind(stripped);
  if (at == std::string::npos) {
    throw chat_template::TemplateError(
        "continue_final_message is set but the final message does not appear in the rendered chat");
  }
  const std::string lstripped = chat_template::python_strip(message, {}, true, false);
  // transformers: keep the message's trailing whitespace only where the template kept it.
  if (rendered.substr(at, lstripped.size()) == message) return rendered.substr(0, at + lstripped.size());
  return rendered.substr(0, at + stripped.size());
}

}  // namespace pagedserve
