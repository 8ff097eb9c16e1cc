#include "chat_template/model_chat_template.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace pagedserve {
namespace {

using nlohmann::ordered_json;
namespace fs = std::filesystem;

std::optional<std::string> read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// A special token is a string or an AddedToken object {"content": ...}.
std::optional<std::string> token_text(const ordered_json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_object() && value.contains("content") && value["content"].is_string()) {
    return value["content"].get<std::string>();
  }
  return std::nullopt;
}

std::optional<std::string> template_from_config(const ordered_json& value, const std::string& file) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_null()) return std::nullopt;
  if (!value.is_array())
    throw SetupError(file, "'chat_template' must be a string or a list of named templates");
  for (const ordered_json& entry : value) {
    if (entry.is_object() && entry.value("name", "") == "default" && entry.contains("template") &&
        entry["template"].is_string()) {
      return entry["template"].get<std::string>();
    }
  }
  throw SetupError(file, "'chat_template' is a list without a template named 'default'");
}

}  // namespace

ModelChatTemplate load_model_chat_template(const std::string& model_dir, const std::string& override_file) {
  ModelChatTemplate result;
  const fs::path config_path = fs::path(model_dir) / "tokenizer_config.json";
  if (std::optional<std::string> text = read_file(config_path)) {
    ordered_json config = ordered_json::parse(*text, nullptr, false);
    if (config.is_discarded() || !config.is_object())
      throw SetupError(config_path.string(), "not a JSON object");
    for (const char* name :
         {"bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"}) {
      if (auto it = config.find(name); it != config.end()) {
        if (std::optional<std::string> token = token_text(*it)) result.special_tokens[name] = *token;
      }
    }
    if (auto it = config.find("chat_template"); it != config.end()) {
      result.source = template_from_config(*it, config_path.string());
      if (result.source) result.origin = config_path.string();
    }
  }
  const fs::path jinja_path = fs::path(model_dir) / "chat_template.jinja";
  if (std::optional<std::string> text = read_file(jinja_path)) {
    result.source = std::move(text);
    result.origin = jinja_path.string();
  }
  if (!override_file.empty()) {
    std::optional<std::string> text = read_file(override_file);
    if (!text) throw SetupError(override_file, "cannot read the chat template file");
    result.source = std::move(text);
    result.origin = override_file;
  }
  return result;
}

}  // namespace pagedserve
