// transformers' apply_chat_template around a ChatTemplate: the variables a chat template sees
// (messages, tools, documents, add_generation_prompt, the tokenizer's special tokens, caller
// kwargs) and continue_final_message's cut after the last message's content.
//
// Pure function of its inputs; any thread. Includes nlohmann/json: include it from .cpp files only.
#pragma once

#include <ctime>
#include <nlohmann/json.hpp>
#include <string>

#include "chat_template/chat_template.h"

namespace pagedserve {

struct ChatPromptInput {
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();  // [{role, content, ...}]
  nlohmann::ordered_json tools;                                       // null or a list of tool schemas
  nlohmann::ordered_json template_kwargs = nlohmann::ordered_json::object();  // e.g. enable_thinking
  bool add_generation_prompt = true;
  bool continue_final_message = false;
};

// `special_tokens`: {"bos_token": "...", "eos_token": "...", ...} as the tokenizer names them.
// Throws chat_template::TemplateError when the template fails or when continue_final_message
// cannot find the final message in the output.
std::string render_chat_prompt(const ChatTemplate& chat_template,
                               const nlohmann::ordered_json& special_tokens, const ChatPromptInput& input,
                               std::time_t now);

}  // namespace pagedserve
