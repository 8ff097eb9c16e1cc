// Walks a TemplateProgram over a context (the variables a chat template sees) and writes the
// output: jinja2's scoping (each for-loop iteration and each macro call gets its own frame;
// namespace() objects carry values out), loop variables, break/continue, macros and call blocks.
//
// Internal to chat_template/. One render per Renderer object, on one thread; the program is
// shared and only read.
#pragma once

#include <ctime>
#include <string>

#include "chat_template/template_ast.h"

namespace pagedserve::chat_template {

// Throws TemplateError (raise_exception, undefined values, type errors).
std::string render_program(const TemplateProgram& program, const Json& context, std::time_t now);

}  // namespace pagedserve::chat_template
