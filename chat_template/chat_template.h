// A Jinja2 chat template, parsed once and rendered per request, byte-identical to what Hugging
// Face transformers' apply_chat_template produces with jinja2 (trim_blocks, lstrip_blocks,
// HF's tojson, raise_exception, strftime_now, the `generation` tag, break/continue).
//
// Owns its parsed program (immutable, shared by copies). render() may be called from any
// thread at once. Errors (syntax at construction, raise_exception or type errors when rendering)
// are chat_template::TemplateError, whose message is fit for a client.
#pragma once

#include <ctime>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>

namespace pagedserve::chat_template {
struct TemplateProgram;
}

namespace pagedserve {

class ChatTemplate {
 public:
  explicit ChatTemplate(std::string_view source);  // throws chat_template::TemplateError

  // `variables` is a JSON object: the names the template sees (messages, tools, bos_token, ...).
  // `now` is the time strftime_now formats.
  std::string render(const nlohmann::ordered_json& variables, std::time_t now) const;

 private:
  std::shared_ptr<const chat_template::TemplateProgram> program_;
};

}  // namespace pagedserve
