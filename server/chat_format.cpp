#include "server/chat_format.h"

#include <spdlog/spdlog.h>

#include "chat_template/chat_prompt.h"
#include "chat_template/model_chat_template.h"
#include "chat_template/template_error.h"

namespace pagedserve {

ChatFormat::~ChatFormat() = default;

std::shared_ptr<const ChatFormat> ChatFormat::load(const std::string& model_dir,
                                                   const std::string& template_file) {
  std::shared_ptr<ChatFormat> format(new ChatFormat());
  format->model_ = std::make_unique<ModelChatTemplate>(load_model_chat_template(model_dir, template_file));
  format->parse(format->model_->source, format->model_->origin);
  if (format->template_) spdlog::info("chat template from {}", format->model_->origin);
  return format;
}

std::shared_ptr<const ChatFormat> ChatFormat::from_source(std::optional<std::string> source,
                                                          const std::string& special_tokens_json) {
  std::shared_ptr<ChatFormat> format(new ChatFormat());
  format->model_ = std::make_unique<ModelChatTemplate>();
  format->model_->special_tokens = nlohmann::ordered_json::parse(special_tokens_json);
  format->parse(std::move(source), "test");
  return format;
}

void ChatFormat::parse(std::optional<std::string> source, std::string origin) {
  if (!source) {
    unavailable_reason_ =
        "This model has no chat template, so /v1/chat/completions cannot build a prompt: add a "
        "'chat_template' to its tokenizer_config.json or a chat_template.jinja file to the model "
        "directory, or start the server with --chat-template FILE (or use /v1/completions with a prompt "
        "you format yourself)";
    return;
  }
  tool_call_format_ = tool_call_format_for(*source);
  try {
    template_.emplace(*source);
  } catch (const chat_template::TemplateError& e) {
    unavailable_reason_ = "The model's chat template (" + origin + ") cannot be parsed: " + e.what();
    spdlog::warn("{}", unavailable_reason_);
  }
}

std::variant<std::string, ApiError> ChatFormat::render(const ChatPromptInput& input) const {
  if (!template_) return ApiError::invalid_request(unavailable_reason_, "messages", "chat_template_missing");
  try {
    return render_chat_prompt(*template_, model_->special_tokens, input, std::time(nullptr));
  } catch (const chat_template::TemplateError& e) {
    return ApiError::invalid_request(std::string("The chat template failed: ") + e.what(), "messages",
                                     "chat_template_error");
  } catch (const std::exception& e) {  // a type the engine did not foresee (nlohmann, stoll): still a 400
    return ApiError::invalid_request(std::string("The chat template failed: ") + e.what(), "messages",
                                     "chat_template_error");
  }
}

}  // namespace pagedserve
