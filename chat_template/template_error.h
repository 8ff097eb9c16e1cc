// The one error type of the template engine: a syntax error found while parsing, or a failure while
// rendering (raise_exception(), an undefined value used where a value is needed, a type error).
// The server answers it with a 400; the message is meant for the client.
#pragma once

#include <stdexcept>
#include <string>

namespace pagedserve::chat_template {

class TemplateError : public std::runtime_error {
 public:
  explicit TemplateError(const std::string& message) : std::runtime_error(message) {}
};

}  // namespace pagedserve::chat_template
