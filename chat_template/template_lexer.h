// Splits template source into tokens the way jinja2's lexer does with HF's settings
// (trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=False): text runs, the
// `{{ }}` / `{% %}` delimiters, and the expression tokens inside them. Comments are dropped;
// whitespace control (`-`, `+`) is applied here, so the parser sees final text.
//
// Internal to chat_template/; pure function, any thread.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace pagedserve::chat_template {

struct Token {
  enum class Type {
    text,
    variable_begin,
    variable_end,
    block_begin,
    block_end,
    name,
    string,
    integer,
    number,
    op,
    end
  };
  Type type = Type::end;
  std::string value;  // text, name, unescaped string literal, number spelling or operator
  int line = 1;
};

// Throws TemplateError on an unterminated tag or string.
std::vector<Token> tokenize_template(std::string_view source);

}  // namespace pagedserve::chat_template
