// Where a model's chat template and special tokens come from: tokenizer_config.json's
// `chat_template` (a string, or a list of {name, template} where "default" is used), a
// `chat_template.jinja` next to it (newer transformers save it there), or a file the operator
// names. The special tokens (bos_token, eos_token, ...) are tokenizer_config.json's, as strings.
//
// Read once at startup on the calling thread; the result is plain data.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace pagedserve {

struct ModelChatTemplate {
  std::optional<std::string> source;  // absent: the model has no chat template
  std::string origin;                 // the file it came from, for logs
  nlohmann::ordered_json special_tokens = nlohmann::ordered_json::object();  // {"bos_token": "<s>", ...}
};

// Reads <model_dir>/tokenizer_config.json and <model_dir>/chat_template.jinja when present;
// `override_file` (non-empty) replaces the template. Throws SetupError naming the file on a
// malformed file or an unreadable override.
ModelChatTemplate load_model_chat_template(const std::string& model_dir,
                                           const std::string& override_file = {});

}  // namespace pagedserve
