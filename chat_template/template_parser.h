// Tokens -> TemplateProgram, with jinja2's grammar and operator precedence. Internal to
// chat_template/; pure function, any thread.
#pragma once

#include <memory>
#include <vector>

#include "chat_template/template_ast.h"
#include "chat_template/template_lexer.h"

namespace pagedserve::chat_template {

// Throws TemplateError naming the line on a syntax error.
std::shared_ptr<const TemplateProgram> parse_template(const std::vector<Token>& tokens);

}  // namespace pagedserve::chat_template
