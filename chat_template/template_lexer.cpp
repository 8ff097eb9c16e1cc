#include "chat_template/template_lexer.h"

#include <cctype>
#include <cstdint>

#include "chat_template/template_error.h"

namespace pagedserve::chat_template {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

// jinja2 normalises every newline to "\n" and drops one trailing newline.
std::string normalize_source(std::string_view source) {
  std::string out;
  out.reserve(source.size());
  for (std::size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      out += '\n';
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      out += source[i];
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

void append_utf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out += char(cp);
  } else if (cp < 0x800) {
    out += char(0xC0 | (cp >> 6));
    out += char(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += char(0xE0 | (cp >> 12));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  } else {
    out += char(0xF0 | (cp >> 18));
    out += char(0x80 | ((cp >> 12) & 0x3F));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  }
}

class Lexer {
 public:
  explicit Lexer(std::string source) : src_(std::move(source)) {}

  std::vector<Token> run() {
    bool line_starting = true;
    while (pos_ < src_.size()) {
      std::size_t start = find_tag(pos_);
      std::string text = src_.substr(pos_, start - pos_);
      if (start == src_.size()) {
        push_text(std::move(text));
        break;
      }
      const char kind = src_[start + 1];  // '{', '%' or '#'
      const char sign = start + 2 < src_.size() ? src_[start + 2] : '\0';
      if (sign == '-') {
        while (!text.empty() && is_space(text.back())) text.pop_back();
      } else if (kind != '{' && sign != '+') {
        // lstrip_blocks: only whitespace between the line start and a block or comment tag.
        std::size_t line_pos = text.rfind('\n');
        line_pos = line_pos == std::string::npos ? 0 : line_pos + 1;
        if (line_pos > 0 || line_starting) {
          bool blank = true;
          for (std::size_t i = line_pos; i < text.size(); ++i)
            blank = blank && (text[i] == ' ' || text[i] == '\t');
          if (blank) text.resize(line_pos);
        }
      }
      push_text(std::move(text));
      count_lines(pos_, start);
      pos_ = start + 2 + ((sign == '-' || sign == '+') ? 1 : 0);
      if (kind == '#') {
        line_starting = lex_comment();
      } else {
        line_starting = lex_tag(kind == '{');
      }
    }
    tokens_.push_back({Token::Type::end, "", line_});
    return std::move(tokens_);
  }

 private:
  std::size_t find_tag(std::size_t from) const {
    for (std::size_t i = from; i + 1 < src_.size(); ++i) {
      if (src_[i] == '{' && (src_[i + 1] == '{' || src_[i + 1] == '%' || src_[i + 1] == '#')) return i;
    }
    return src_.size();
  }

  void push_text(std::string text) {
    if (!text.empty()) tokens_.push_back({Token::Type::text, std::move(text), line_});
  }

  void count_lines(std::size_t from, std::size_t to) {
    for (std::size_t i = from; i < to && i < src_.size(); ++i) line_ += src_[i] == '\n';
  }

  // After a closing delimiter: `-` strips all following whitespace, trim_blocks one newline.
  // Returns whether the consumed text ends a line (lstrip_blocks' "line starting").
  bool after_close(bool strip_all, bool trim_newline) {
    std::size_t begin = pos_;
    if (strip_all) {
      while (pos_ < src_.size() && is_space(src_[pos_])) ++pos_;
    } else if (trim_newline && pos_ < src_.size() && src_[pos_] == '\n') {
      ++pos_;
    }
    count_lines(begin, pos_);
    return pos_ > begin && src_[pos_ - 1] == '\n';
  }

  bool lex_comment() {
    std::size_t end = src_.find("#}", pos_);
    if (end == std::string::npos)
      throw TemplateError("line " + std::to_string(line_) + ": unterminated comment");
    const bool strip = end > pos_ && src_[end - 1] == '-';
    const bool keep = end > pos_ && src_[end - 1] == '+';
    count_lines(pos_, end);
    pos_ = end + 2;
    return after_close(strip, !keep);
  }

  bool lex_tag(bool variable) {
    tokens_.push_back({variable ? Token::Type::variable_begin : Token::Type::block_begin, "", line_});
    int depth = 0;  // open brackets, so "}}" inside a dict literal does not end the tag
    while (true) {
      while (pos_ < src_.size() && is_space(src_[pos_])) {
        line_ += src_[pos_] == '\n';
        ++pos_;
      }
      if (pos_ >= src_.size()) throw TemplateError("line " + std::to_string(line_) + ": unterminated tag");
      std::string_view rest(src_.data() + pos_, src_.size() - pos_);
      if (depth == 0) {
        const std::string_view close = variable ? "}}" : "%}";
        for (std::string_view prefix : {"-", "+", ""}) {
          if (rest.substr(0, prefix.size()) == prefix && rest.substr(prefix.size(), 2) == close) {
            pos_ += prefix.size() + 2;
            tokens_.push_back({variable ? Token::Type::variable_end : Token::Type::block_end, "", line_});
            return after_close(prefix == "-", !variable && prefix != "+");
          }
        }
      }
      const char c = src_[pos_];
      if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
        std::size_t end = pos_;
        while (end < src_.size() && (std::isalnum(static_cast<unsigned char>(src_[end])) || src_[end] == '_'))
          ++end;
        tokens_.push_back({Token::Type::name, src_.substr(pos_, end - pos_), line_});
        pos_ = end;
      } else if (std::isdigit(static_cast<unsigned char>(c))) {
        lex_number();
      } else if (c == '\'' || c == '"') {
        lex_string(c);
      } else {
        static const char* const ops[] = {"==", "!=", "<=", ">=", "//", "**", "<", ">", "/",
                                          "*",  "+",  "-",  "%",  "~",  "(",  ")", "[", "]",
                                          "{",  "}",  ",",  ".",  ":",  "|",  "="};
        bool matched = false;
        for (const char* op : ops) {
          std::string_view o(op);
          if (rest.substr(0, o.size()) == o) {
            if (o == "(" || o == "[" || o == "{") ++depth;
            if (o == ")" || o == "]" || o == "}") --depth;
            tokens_.push_back({Token::Type::op, std::string(o), line_});
            pos_ += o.size();
            matched = true;
            break;
          }
        }
        if (!matched) {
          throw TemplateError("line " + std::to_string(line_) + ": unexpected character '" +
                              std::string(1, c) + "'");
        }
      }
    }
  }

  void lex_number() {
    std::size_t end = pos_;
    bool is_float = false;
    while (end < src_.size() && (std::isdigit(static_cast<unsigned char>(src_[end])) || src_[end] == '_'))
      ++end;
    if (end + 1 < src_.size() && src_[end] == '.' &&
        std::isdigit(static_cast<unsigned char>(src_[end + 1]))) {
      is_float = true;
      ++end;
      while (end < src_.size() && std::isdigit(static_cast<unsigned char>(src_[end]))) ++end;
    }
    if (end < src_.size() && (src_[end] == 'e' || src_[end] == 'E')) {
      std::size_t e = end + 1;
      if (e < src_.size() && (src_[e] == '+' || src_[e] == '-')) ++e;
      if (e < src_.size() && std::isdigit(static_cast<unsigned char>(src_[e]))) {
        is_float = true;
        end = e;
        while (end < src_.size() && std::isdigit(static_cast<unsigned char>(src_[end]))) ++end;
      }
    }
    std::string spelling;
    for (std::size_t i = pos_; i < end; ++i) {
      if (src_[i] != '_') spelling += src_[i];
    }
    tokens_.push_back({is_float ? Token::Type::number : Token::Type::integer, spelling, line_});
    pos_ = end;
  }

  void lex_string(char quote) {
    std::string value;
    std::size_t i = pos_ + 1;
    while (true) {
      if (i >= src_.size()) throw TemplateError("line " + std::to_string(line_) + ": unterminated string");
      char c = src_[i];
      if (c == quote) break;
      if (c != '\\' || i + 1 >= src_.size()) {
        line_ += c == '\n';
        value += c;
        ++i;
        continue;
      }
      char e = src_[i + 1];
      i += 2;
      switch (e) {
        case 'n':
          value += '\n';
          break;
        case 't':
          value += '\t';
          break;
        case 'r':
          value += '\r';
          break;
        case '\\':
          value += '\\';
          break;
        case '\'':
          value += '\'';
          break;
        case '"':
          value += '"';
          break;
        case '\n':
          break;
        case 'a':
          value += '\a';
          break;
        case 'b':
          value += '\b';
          break;
        case 'f':
          value += '\f';
          break;
        case 'v':
          value += '\v';
          break;
        case '0':
          value += '\0';
          break;
        case 'x':
        case 'u':
        case 'U': {
          const std::size_t digits = e == 'x' ? 2 : e == 'u' ? 4 : 8;
          // Python: exactly `digits` hex digits, at most U+10FFFF, else a syntax error. (std::stoul
          // threw std::invalid_argument past the parser on "\\xZZ": found by tests/fuzz.)
          if (i + digits > src_.size()) throw TemplateError("bad escape in string literal");
          std::uint32_t code_point = 0;
          for (std::size_t d = 0; d < digits; ++d) {
            const char c = src_[i + d];
            const int nibble = c >= '0' && c <= '9'   ? c - '0'
                               : c >= 'a' && c <= 'f' ? c - 'a' + 10
                               : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                                      : -1;
            if (nibble < 0) throw TemplateError("bad escape in string literal");
            code_point = code_point << 4 | std::uint32_t(nibble);
          }
          if (code_point > 0x10FFFF) throw TemplateError("bad escape in string literal");
          append_utf8(value, code_point);
          i += digits;
          break;
        }
        default:
          value += '\\';
          value += e;
      }
    }
    tokens_.push_back({Token::Type::string, std::move(value), line_});
    pos_ = i + 1;
  }

  std::string src_;
  std::size_t pos_ = 0;
  int line_ = 1;
  std::vector<Token> tokens_;
};

}  // namespace

std::vector<Token> tokenize_template(std::string_view source) {
  return Lexer(normalize_source(source)).run();
}

}  // namespace pagedserve::chat_template
