#include "chat_template/chat_template.h"

#include "chat_template/template_lexer.h"
#include "chat_template/template_parser.h"
#include "chat_template/template_renderer.h"

namespace pagedserve {

ChatTemplate::ChatTemplate(std::string_view source)
    : program_(chat_template::parse_template(chat_template::tokenize_template(source))) {}

std::string ChatTemplate::render(const nlohmann::ordered_json& variables, std::time_t now) const {
  return chat_template::render_program(*program_, variables, now);
}

}  // namespace pagedserve
