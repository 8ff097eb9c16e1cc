// The parsed form of a template: expressions and statements as jinja2 has them. Built once by the
// parser, then only read (shared by every render, any thread).
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "chat_template/template_value.h"

namespace pagedserve::chat_template {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  enum class Kind {
    literal,      // value
    name,         // name
    list,         // args = items
    tuple,        // args = items
    dict,         // args = key, value, key, value, ...
    attribute,    // args[0].name
    subscript,    // args[0][args[1]]
    slice,        // args[0][args[1]:args[2]:args[3]], absent parts are null
    call,         // args[0](args[1..], kwargs)
    filter,       // args[0] | name(args[1..], kwargs)
    test,         // args[0] is [not] name(args[1..])
    negate,       // -args[0]
    logical_not,  // not args[0]
    binary,       // args[0] name args[1]: + - * / // % ** ~ == != < > <= >= in "not in"
    logical_and,  // args[0] and args[1]
    logical_or,
    conditional,  // args[0] if args[1] else args[2] (args[2] may be null)
  };
  Kind kind = Kind::literal;
  Json value;
  std::string name;
  std::vector<ExprPtr> args;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
  bool negated = false;  // test: "is not"
  int line = 0;
};

struct Node;
using NodePtr = std::unique_ptr<Node>;
using Body = std::vector<NodePtr>;

struct Node {
  enum class Kind {
    text,          // text
    output,        // {{ expr }}
    if_chain,      // branches: (condition, body)...; else_body
    for_loop,      // targets in expr [if condition]: body, else_body
    set,           // targets = expr, or target_expr (ns.attr) = expr
    set_block,     // {% set targets[0] %}body{% endset %}
    macro,         // name(params): body
    call_block,    // {% call expr %}body{% endcall %}: expr sees `caller`
    filter_block,  // {% filter expr %}: expr is a filter applied to the rendered body
    loop_break,
    loop_continue,
  };
  Kind kind = Kind::text;
  std::string text;
  ExprPtr expr;
  ExprPtr condition;    // for_loop's inline filter
  ExprPtr target_expr;  // set ns.attr
  std::vector<std::string> targets;
  std::vector<std::pair<ExprPtr, Body>> branches;
  Body body;
  Body else_body;
  std::vector<std::pair<std::string, ExprPtr>> params;  // macro: name, default (may be null)
  int line = 0;
};

struct TemplateProgram {
  Body body;
};

}  // namespace pagedserve::chat_template
