#include "chat_template/template_parser.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <initializer_list>
#include <string_view>

#include "chat_template/template_error.h"

namespace pagedserve::chat_template {
namespace {

using Type = Token::Type;

class Parser {
 public:
  explicit Parser(const std::vector<Token>& tokens) : tokens_(tokens) {}

  std::shared_ptr<const TemplateProgram> run() {
    auto program = std::make_shared<TemplateProgram>();
    std::string end_tag;
    program->body = parse_body({}, end_tag);
    return program;
  }

 private:
  // --- token stream ------------------------------------------------------------------------
  const Token& peek(std::size_t ahead = 0) const {
    return tokens_[std::min(pos_ + ahead, tokens_.size() - 1)];
  }
  const Token& next() {
    const Token& t = peek();
    if (pos_ < tokens_.size() - 1) ++pos_;
    return t;
  }
  bool at_op(std::string_view op, std::size_t ahead = 0) const {
    return peek(ahead).type == Type::op && peek(ahead).value == op;
  }
  bool at_name(std::string_view name, std::size_t ahead = 0) const {
    return peek(ahead).type == Type::name && peek(ahead).value == name;
  }
  bool accept_op(std::string_view op) {
    if (!at_op(op)) return false;
    next();
    return true;
  }
  bool accept_name(std::string_view name) {
    if (!at_name(name)) return false;
    next();
    return true;
  }
  [[noreturn]] void fail(const std::string& what) const {
    const Token& t = peek();
    throw TemplateError("syntax error, line " + std::to_string(t.line) + ": " + what +
                        (t.value.empty() ? "" : " (at '" + t.value + "')"));
  }
  void expect_op(std::string_view op) {
    if (!accept_op(op)) fail("expected '" + std::string(op) + "'");
  }
  // The integer token at peek(), consumed. Python's ints are unbounded and ours are int64, so a
  // longer literal is the template's error (std::stoll's std::out_of_range escaped the parser and
  // was not a TemplateError: found by tests/fuzz/chat_template_fuzz).
  Json take_integer() {
    errno = 0;
    const long long value = std::strtoll(peek().value.c_str(), nullptr, 10);
    if (errno == ERANGE) fail("integer literal out of the 64-bit range");
    next();
    return Json(value);
  }
  // The number token at peek(), consumed: beyond the double range it is inf, as Python's float()
  // reads it (std::stod would throw).
  Json take_float() {
    const double value = std::strtod(peek().value.c_str(), nullptr);
    next();
    return Json(value);
  }
  std::string expect_name() {
    if (peek().type != Type::name) fail("expected a name");
    return next().value;
  }
  void expect_block_end() {
    if (peek().type != Type::block_end) fail("expected end of block tag");
    next();
  }

  // --- statements --------------------------------------------------------------------------
  // Parses nodes until a block tag named in `ends` (consumed with its name; returned in end_tag).
  Body parse_body(std::initializer_list<std::string_view> ends, std::string& end_tag) {
    Body body;
    while (true) {
      const Token& t = peek();
      if (t.type == Type::end) {
        if (ends.size() != 0)
          fail("unexpected end of template, expected '" + std::string(*ends.begin()) + "'");
        return body;
      }
      if (t.type == Type::text) {
        auto node = std::make_unique<Node>();
        node->kind = Node::Kind::text;
        node->text = next().value;
        body.push_back(std::move(node));
      } else if (t.type == Type::variable_begin) {
        next();
        auto node = std::make_unique<Node>();
        node->kind = Node::Kind::output;
        node->line = t.line;
        node->expr = parse_tuple_or_expression();
        if (peek().type != Type::variable_end) fail("expected '}}'");
        next();
        body.push_back(std::move(node));
      } else if (t.type == Type::block_begin) {
        if (peek(1).type == Type::name &&
            std::find(ends.begin(), ends.end(), std::string_view(peek(1).value)) != ends.end()) {
          next();
          end_tag = next().value;
          return body;
        }
        next();
        parse_statement(body);
      } else {
        fail("unexpected token");
      }
    }
  }

  void parse_statement(Body& body) {
    const int line = peek().line;
    const std::string keyword = expect_name();
    auto node = std::make_unique<Node>();
    node->line = line;
    std::string end_tag;
    if (keyword == "if") {
      node->kind = Node::Kind::if_chain;
      ExprPtr condition = parse_expression();
      expect_block_end();
      while (true) {
        Body branch = parse_body({"elif", "else", "endif"}, end_tag);
        node->branches.emplace_back(std::move(condition), std::move(branch));
        if (end_tag == "elif") {
          condition = parse_expression();
          expect_block_end();
          continue;
        }
        if (end_tag == "else") {
          expect_block_end();
          node->else_body = parse_body({"endif"}, end_tag);
        }
        break;
      }
    } else if (keyword == "for") {
      node->kind = Node::Kind::for_loop;
      node->targets.push_back(expect_name());
      while (accept_op(",")) node->targets.push_back(expect_name());
      if (!accept_name("in")) fail("expected 'in'");
      node->expr = parse_tuple_or_expression(/*with_condition=*/false);
      if (accept_name("if")) node->condition = parse_expression();
      accept_name("recursive");
      expect_block_end();
      node->body = parse_body({"else", "endfor"}, end_tag);
      if (end_tag == "else") {
        expect_block_end();
        node->else_body = parse_body({"endfor"}, end_tag);
      }
    } else if (keyword == "set") {
      std::string first = expect_name();
      if (accept_op(".")) {
        node->kind = Node::Kind::set;
        auto target = std::make_unique<Expr>();
        target->kind = Expr::Kind::name;
        target->name = first;
        auto attribute = std::make_unique<Expr>();
        attribute->kind = Expr::Kind::attribute;
        attribute->name = expect_name();
        attribute->args.push_back(std::move(target));
        node->target_expr = std::move(attribute);
      } else {
        node->targets.push_back(first);
        while (accept_op(",")) node->targets.push_back(expect_name());
      }
      if (accept_op("=")) {
        node->kind = Node::Kind::set;
        node->expr = parse_tuple_or_expression();
      } else {
        if (node->target_expr || node->targets.size() != 1) fail("expected '='");
        node->kind = Node::Kind::set_block;
        if (accept_op("|")) node->expr = parse_filter_chain(nullptr);
        expect_block_end();
        node->body = parse_body({"endset"}, end_tag);
      }
    } else if (keyword == "macro") {
      node->kind = Node::Kind::macro;
      node->text = expect_name();
      expect_op("(");
      while (!accept_op(")")) {
        std::string param = expect_name();
        ExprPtr default_value;
        if (accept_op("=")) default_value = parse_expression();
        node->params.emplace_back(std::move(param), std::move(default_value));
        if (!at_op(")")) expect_op(",");
      }
      expect_block_end();
      node->body = parse_body({"endmacro"}, end_tag);
    } else if (keyword == "call") {
      node->kind = Node::Kind::call_block;
      node->expr = parse_expression();
      expect_block_end();
      node->body = parse_body({"endcall"}, end_tag);
    } else if (keyword == "filter") {
      node->kind = Node::Kind::filter_block;
      node->expr = parse_filter_chain(nullptr);
      expect_block_end();
      node->body = parse_body({"endfilter"}, end_tag);
    } else if (keyword == "generation") {
      // transformers' AssistantTracker tag: renders its body unchanged.
      expect_block_end();
      Body inner = parse_body({"endgeneration"}, end_tag);
      expect_block_end();
      for (NodePtr& n : inner) body.push_back(std::move(n));
      return;
    } else if (keyword == "break" || keyword == "continue") {
      node->kind = keyword == "break" ? Node::Kind::loop_break : Node::Kind::loop_continue;
    } else {
      fail("unknown tag '" + keyword + "'");
    }
    expect_block_end();
    body.push_back(std::move(node));
  }

  // --- expressions -------------------------------------------------------------------------
  ExprPtr make(Expr::Kind kind, std::string name = {}) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->name = std::move(name);
    e->line = peek().line;
    return e;
  }

  ExprPtr parse_tuple_or_expression(bool with_condition = true) {
    ExprPtr first = with_condition ? parse_expression() : parse_or();
    if (!at_op(",")) return first;
    ExprPtr tuple = make(Expr::Kind::tuple);
    tuple->args.push_back(std::move(first));
    while (accept_op(",")) {
      if (peek().type == Type::block_end || peek().type == Type::variable_end || at_name("if")) break;
      tuple->args.push_back(with_condition ? parse_expression() : parse_or());
    }
    return tuple;
  }

  ExprPtr parse_expression() {
    ExprPtr value = parse_or();
    while (accept_name("if")) {
      ExprPtr e = make(Expr::Kind::conditional);
      ExprPtr condition = parse_or();
      ExprPtr otherwise = accept_name("else") ? parse_expression() : nullptr;
      e->args.push_back(std::move(value));
      e->args.push_back(std::move(condition));
      e->args.push_back(std::move(otherwise));
      value = std::move(e);
    }
    return value;
  }

  ExprPtr binary(Expr::Kind kind, std::string op, ExprPtr left, ExprPtr right) {
    ExprPtr e = make(kind, std::move(op));
    e->args.push_back(std::move(left));
    e->args.push_back(std::move(right));
    return e;
  }

  ExprPtr parse_or() {
    ExprPtr left = parse_and();
    while (accept_name("or")) left = binary(Expr::Kind::logical_or, "or", std::move(left), parse_and());
    return left;
  }

  ExprPtr parse_and() {
    ExprPtr left = parse_not();
    while (accept_name("and")) left = binary(Expr::Kind::logical_and, "and", std::move(left), parse_not());
    return left;
  }

  ExprPtr parse_not() {
    if (accept_name("not")) {
      ExprPtr e = make(Expr::Kind::logical_not);
      e->args.push_back(parse_not());
      return e;
    }
    return parse_compare();
  }

  ExprPtr parse_compare() {
    ExprPtr left = parse_math1();
    while (true) {
      std::string op;
      if (peek().type == Type::op &&
          (at_op("==") || at_op("!=") || at_op("<") || at_op(">") || at_op("<=") || at_op(">="))) {
        op = next().value;
      } else if (accept_name("in")) {
        op = "in";
      } else if (at_name("not") && at_name("in", 1)) {
        next();
        next();
        op = "not in";
      } else {
        return left;
      }
      left = binary(Expr::Kind::binary, op, std::move(left), parse_math1());
    }
  }

  ExprPtr parse_math1() {
    ExprPtr left = parse_concat();
    while (at_op("+") || at_op("-")) {
      std::string op = next().value;
      left = binary(Expr::Kind::binary, op, std::move(left), parse_concat());
    }
    return left;
  }

  ExprPtr parse_concat() {
    ExprPtr left = parse_math2();
    while (accept_op("~")) left = binary(Expr::Kind::binary, "~", std::move(left), parse_math2());
    return left;
  }

  ExprPtr parse_math2() {
    ExprPtr left = parse_pow();
    while (at_op("*") || at_op("/") || at_op("//") || at_op("%")) {
      std::string op = next().value;
      left = binary(Expr::Kind::binary, op, std::move(left), parse_pow());
    }
    return left;
  }

  ExprPtr parse_pow() {
    ExprPtr left = parse_unary(true);
    while (accept_op("**")) left = binary(Expr::Kind::binary, "**", std::move(left), parse_unary(true));
    return left;
  }

  ExprPtr parse_unary(bool with_filter) {
    ExprPtr node;
    if (accept_op("-")) {
      node = make(Expr::Kind::negate);
      node->args.push_back(parse_unary(false));
    } else if (accept_op("+")) {
      node = parse_unary(false);
    } else {
      node = parse_primary();
    }
    node = parse_postfix(std::move(node));
    if (with_filter) node = parse_filter_expression(std::move(node));
    return node;
  }

  ExprPtr parse_primary() {
    const Token& t = peek();
    if (t.type == Type::name) {
      next();
      if (t.value == "true" || t.value == "True") return literal(true);
      if (t.value == "false" || t.value == "False") return literal(false);
      if (t.value == "none" || t.value == "None") return literal(nullptr);
      ExprPtr e = make(Expr::Kind::name, t.value);
      return e;
    }
    if (t.type == Type::string) {
      std::string s = next().value;
      while (peek().type == Type::string) s += next().value;
      return literal(std::move(s));
    }
    if (t.type == Type::integer) return literal(take_integer());
    if (t.type == Type::number) return literal(take_float());
    if (accept_op("(")) {
      if (accept_op(")")) return make(Expr::Kind::tuple);
      ExprPtr inner = parse_tuple_or_expression();
      expect_op(")");
      return inner;
    }
    if (accept_op("[")) {
      ExprPtr list = make(Expr::Kind::list);
      while (!accept_op("]")) {
        list->args.push_back(parse_expression());
        if (!at_op("]")) expect_op(",");
      }
      return list;
    }
    if (accept_op("{")) {
      ExprPtr dict = make(Expr::Kind::dict);
      while (!accept_op("}")) {
        dict->args.push_back(parse_expression());
        expect_op(":");
        dict->args.push_back(parse_expression());
        if (!at_op("}")) expect_op(",");
      }
      return dict;
    }
    fail("unexpected token in expression");
  }

  ExprPtr literal(Json value) {
    ExprPtr e = make(Expr::Kind::literal);
    e->value = std::move(value);
    return e;
  }

  ExprPtr parse_postfix(ExprPtr node) {
    while (true) {
      if (accept_op(".")) {
        ExprPtr e = make(Expr::Kind::attribute);
        if (peek().type == Type::integer) {
          e->kind = Expr::Kind::subscript;
          e->args.push_back(std::move(node));
          e->args.push_back(literal(take_integer()));
        } else {
          e->name = expect_name();
          e->args.push_back(std::move(node));
        }
        node = std::move(e);
      } else if (accept_op("[")) {
        node = parse_subscript(std::move(node));
      } else if (at_op("(")) {
        node = parse_call(std::move(node));
      } else {
        return node;
      }
    }
  }

  ExprPtr parse_subscript(ExprPtr target) {
    ExprPtr parts[3];
    bool is_slice = false;
    int part = 0;
    while (!accept_op("]")) {
      if (accept_op(":")) {
        is_slice = true;
        if (++part > 2) fail("too many ':' in a slice");
        continue;
      }
      parts[part] = parse_expression();
    }
    ExprPtr e = make(is_slice ? Expr::Kind::slice : Expr::Kind::subscript);
    e->args.push_back(std::move(target));
    if (!is_slice) {
      if (!parts[0]) fail("empty subscript");
      e->args.push_back(std::move(parts[0]));
      return e;
    }
    for (ExprPtr& p : parts) e->args.push_back(std::move(p));
    return e;
  }

  // "(args, key=value)" into `e` (its args[0] already holds the callee or the filtered value).
  void parse_arguments(Expr& e) {
    expect_op("(");
    while (!accept_op(")")) {
      if (peek().type == Type::name && at_op("=", 1)) {
        std::string key = next().value;
        next();
        e.kwargs.emplace_back(std::move(key), parse_expression());
      } else {
        e.args.push_back(parse_expression());
      }
      if (!at_op(")")) expect_op(",");
    }
  }

  ExprPtr parse_call(ExprPtr callee) {
    ExprPtr e = make(Expr::Kind::call);
    e->args.push_back(std::move(callee));
    parse_arguments(*e);
    return e;
  }

  // "| name(args) | name ..." applied to `value` (null: a filter block's chain, applied later).
  ExprPtr parse_filter_chain(ExprPtr value) {
    do {
      ExprPtr e = make(Expr::Kind::filter);
      e->name = expect_name();
      while (accept_op(".")) {
        e->name.push_back('.');
        e->name.append(expect_name());
      }
      e->args.push_back(std::move(value));
      if (at_op("(")) parse_arguments(*e);
      value = std::move(e);
    } while (accept_op("|"));
    return value;
  }

  ExprPtr parse_filter_expression(ExprPtr node) {
    while (true) {
      if (accept_op("|")) {
        node = parse_filter_chain(std::move(node));
      } else if (accept_name("is")) {
        ExprPtr e = make(Expr::Kind::test);
        e->negated = accept_name("not");
        e->name = expect_name();
        e->args.push_back(std::move(node));
        if (at_op("(")) {
          parse_arguments(*e);
        } else if ((peek().type == Type::name || peek().type == Type::string ||
                    peek().type == Type::integer || peek().type == Type::number || at_op("[") ||
                    at_op("{")) &&
                   !at_name("else") && !at_name("or") && !at_name("and")) {
          ExprPtr argument = parse_primary();
          e->args.push_back(parse_postfix(std::move(argument)));
        }
        node = std::move(e);
      } else if (at_op("(")) {
        node = parse_call(std::move(node));
      } else {
        return node;
      }
    }
  }

  const std::vector<Token>& tokens_;
  std::size_t pos_ = 0;
};

}  // namespace

std::shared_ptr<const TemplateProgram> parse_template(const std::vector<Token>& tokens) {
  return Parser(tokens).run();
}

}  // namespace pagedserve::chat_template
