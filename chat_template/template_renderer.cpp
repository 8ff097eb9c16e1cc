#include "chat_template/template_renderer.h"

#include <cmath>
#include <limits>
#include <map>
#include <memory>

#include "chat_template/template_builtins.h"
#include "chat_template/template_error.h"

namespace pagedserve::chat_template {
namespace {

constexpr int kMaxCallDepth = 200;

struct Frame {
  std::map<std::string, Value, std::less<>> variables;
  const Frame* parent = nullptr;
};

enum class Flow { normal, loop_break, loop_continue };

class Renderer {
 public:
  Renderer(const Json& context, std::time_t now) : context_(context), now_(now) {}

  std::string run(const TemplateProgram& program) {
    std::string out;
    Frame root;
    root_ = &root;
    render_body(program.body, root, out);
    return out;
  }

 private:
  // --- statements --------------------------------------------------------------------------
  Flow render_body(const Body& body, Frame& frame, std::string& out) {
    for (const NodePtr& node : body) {
      Flow flow = render_node(*node, frame, out);
      if (flow != Flow::normal) return flow;
    }
    return Flow::normal;
  }

  Flow render_node(const Node& node, Frame& frame, std::string& out) {
    switch (node.kind) {
      case Node::Kind::text:
        out += node.text;
        return Flow::normal;
      case Node::Kind::output:
        out += to_python_str(eval(*node.expr, frame));
        return Flow::normal;
      case Node::Kind::if_chain:
        for (const auto& [condition, branch] : node.branches) {
          if (truthy(eval(*condition, frame))) return render_body(branch, frame, out);
        }
        return render_body(node.else_body, frame, out);
      case Node::Kind::for_loop:
        render_for(node, frame, out);
        return Flow::normal;
      case Node::Kind::set:
        render_set(node, frame);
        return Flow::normal;
      case Node::Kind::set_block: {
        std::string captured;
        render_body(node.body, frame, captured);
        Value value = Value::of(captured);
        if (node.expr) value = apply_filter_chain(*node.expr, value, frame);
        frame.variables[node.targets[0]] = value;
        return Flow::normal;
      }
      case Node::Kind::macro:
        frame.variables[node.text] = make_macro(node);
        return Flow::normal;
      case Node::Kind::call_block: {
        const Node* caller_node = &node;
        Frame* caller_frame = &frame;
        Value caller = Value::function([this, caller_node, caller_frame](CallArgs&) {
          std::string captured;
          Frame inner{{}, caller_frame};
          render_body(caller_node->body, inner, captured);
          return Value::of(captured);
        });
        if (node.expr->kind != Expr::Kind::call) throw TemplateError("{% call %} expects a call");
        out += to_python_str(eval_call(*node.expr, frame, &caller));
        return Flow::normal;
      }
      case Node::Kind::filter_block: {
        std::string captured;
        render_body(node.body, frame, captured);
        out += to_python_str(apply_filter_chain(*node.expr, Value::of(captured), frame));
        return Flow::normal;
      }
      case Node::Kind::loop_break:
        return Flow::loop_break;
      case Node::Kind::loop_continue:
        return Flow::loop_continue;
    }
    return Flow::normal;
  }

  // A filter chain parsed with a null innermost value (filter blocks, set blocks).
  Value apply_filter_chain(const Expr& chain, Value input, Frame& frame) {
    if (!chain.args[0]) return call_filter(chain, std::move(input), frame);
    Value inner = apply_filter_chain(*chain.args[0], std::move(input), frame);
    return call_filter(chain, std::move(inner), frame);
  }

  void bind_targets(const std::vector<std::string>& targets, const Value& value, Frame& frame) {
    if (targets.size() == 1) {
      frame.variables[targets[0]] = value;
      return;
    }
    const Json& items = require_data(value, "unpacking");
    if (!items.is_array() || items.size() != targets.size()) {
      throw TemplateError("cannot unpack " + std::to_string(items.is_array() ? items.size() : 1) +
                          " values into " + std::to_string(targets.size()));
    }
    for (std::size_t i = 0; i < targets.size(); ++i) frame.variables[targets[i]] = Value::of(items[i]);
  }

  Json iterable_items(const Value& v) {
    if (v.is_undefined()) return Json::array();
    if (v.kind == Value::Kind::name_space) throw TemplateError("'Namespace' object is not iterable");
    const Json& d = require_data(v, "for");
    if (d.is_array()) return d;
    Json out = Json::array();
    if (d.is_object()) {
      for (auto it = d.begin(); it != d.end(); ++it) out.push_back(decode_key(it.key()));
    } else if (d.is_string()) {
      const std::string& s = d.get_ref<const std::string&>();
      std::vector<std::size_t> offsets = code_point_offsets(s);
      for (std::size_t i = 0; i + 1 < offsets.size(); ++i)
        out.push_back(s.substr(offsets[i], offsets[i + 1] - offsets[i]));
    } else {
      throw TemplateError("'" + type_name(v) + "' object is not iterable");
    }
    return out;
  }

  void render_for(const Node& node, Frame& frame, std::string& out) {
    Json items = iterable_items(eval(*node.expr, frame));
    if (node.condition) {
      Json kept = Json::array();
      for (const Json& item : items) {
        Frame probe{{}, &frame};
        bind_targets(node.targets, Value::of(item), probe);
        if (truthy(eval(*node.condition, probe))) kept.push_back(item);
      }
      items = std::move(kept);
    }
    const std::size_t n = items.size();
    for (std::size_t i = 0; i < n; ++i) {
      Frame inner{{}, &frame};
      Json loop = {{"index", i + 1},  {"index0", i},        {"revindex", n - i}, {"revindex0", n - i - 1},
                   {"first", i == 0}, {"last", i + 1 == n}, {"length", n},       {"depth", 1},
                   {"depth0", 0}};
      if (i > 0) loop["previtem"] = items[i - 1];
      if (i + 1 < n) loop["nextitem"] = items[i + 1];
      inner.variables["loop"] = Value::of(std::move(loop));
      bind_targets(node.targets, Value::of(items[i]), inner);
      if (render_body(node.body, inner, out) == Flow::loop_break) break;
    }
    if (n == 0) render_body(node.else_body, frame, out);
  }

  void render_set(const Node& node, Frame& frame) {
    Value value = eval(*node.expr, frame);
    if (node.target_expr) {
      Value target = eval(*node.target_expr->args[0], frame);
      if (target.kind != Value::Kind::name_space) {
        throw TemplateError("cannot assign attribute on non-namespace object");
      }
      (*target.name_space)[node.target_expr->name] = value.is_data() ? value.data : Json(nullptr);
      return;
    }
    bind_targets(node.targets, value, frame);
  }

  Value make_macro(const Node& node) {
    const Node* macro = &node;
    return Value::function([this, macro](CallArgs& args) {
      if (++depth_ > kMaxCallDepth) throw TemplateError("macro recursion too deep");
      Frame frame{{}, root_};
      for (std::size_t i = 0; i < macro->params.size(); ++i) {
        const auto& [param, default_value] = macro->params[i];
        Value v = args.get(i, param);
        if (v.is_undefined() && default_value) v = eval(*default_value, frame);
        frame.variables[param] = v.is_undefined() ? Value::undefined(param) : v;
      }
      if (args.positional.size() > macro->params.size()) {
        throw TemplateError("macro '" + macro->text + "' takes not more than " +
                            std::to_string(macro->params.size()) + " argument(s)");
      }
      for (const auto& [key, v] : args.keyword) {
        if (key == "caller") frame.variables["caller"] = v;
      }
      std::string out;
      render_body(macro->body, frame, out);
      --depth_;
      return Value::of(out);
    });
  }

  // --- expressions -------------------------------------------------------------------------
  Value lookup(std::string_view name, const Frame& frame) {
    for (const Frame* f = &frame; f; f = f->parent) {
      auto it = f->variables.find(name);
      if (it != f->variables.end()) return it->second;
    }
    if (auto it = context_.find(name); it != context_.end()) return Value::of(*it);
    return global_function(name, now_);
  }

  Value eval(const Expr& e, Frame& frame) {
    switch (e.kind) {
      case Expr::Kind::literal:
        return Value::of(e.value);
      case Expr::Kind::name:
        return lookup(e.name, frame);
      case Expr::Kind::list:
      case Expr::Kind::tuple: {
        Json items = Json::array();
        for (const ExprPtr& item : e.args) {
          Value v = eval(*item, frame);
          items.push_back(v.is_data()                         ? v.data
                          : v.kind == Value::Kind::name_space ? *v.name_space
                                                              : Json(nullptr));
        }
        return Value::of(items);
      }
      case Expr::Kind::dict: {
        Json object = Json::object();
        for (std::size_t i = 0; i + 1 < e.args.size(); i += 2) {
          Value key = eval(*e.args[i], frame);
          Value v = eval(*e.args[i + 1], frame);
          object[encode_key(require_data(key, "dict key"))] = v.is_data() ? v.data : Json(nullptr);
        }
        return Value::of(object);
      }
      case Expr::Kind::attribute:
        return attribute(eval(*e.args[0], frame), e.name);
      case Expr::Kind::subscript: {
        Value target = eval(*e.args[0], frame);
        Value index = eval(*e.args[1], frame);
        if (target.is_undefined()) throw TemplateError("'" + target.undefined_hint + "' is undefined");
        if (index.is_string() && !(target.is_data() && target.data.is_object()))
          return attribute(target, index.str());
        if (!target.is_data()) return Value::undefined(to_python_str(index));
        return python_index(target, index);
      }
      case Expr::Kind::slice: {
        Value target = eval(*e.args[0], frame);
        auto part = [&](int i) {
          return e.args[std::size_t(i)] ? eval(*e.args[std::size_t(i)], frame) : Value();
        };
        return python_slice(target, part(1), part(2), part(3));
      }
      case Expr::Kind::call:
        return eval_call(e, frame, nullptr);
      case Expr::Kind::filter:
        return call_filter(e, eval(*e.args[0], frame), frame);
      case Expr::Kind::test: {
        Value subject = eval(*e.args[0], frame);
        CallArgs args = eval_args(e, frame);
        return Value::of(apply_test(e.name, subject, args) != e.negated);
      }
      case Expr::Kind::negate: {
        const Value operand = eval(*e.args[0], frame);
        const Json& d = require_data(operand, "unary -");
        if (d.is_number_integer()) return Value::of(-d.get<std::int64_t>());
        if (d.is_number()) return Value::of(-d.get<double>());
        throw TemplateError("bad operand type for unary -");
      }
      case Expr::Kind::logical_not:
        return Value::of(!truthy(eval(*e.args[0], frame)));
      case Expr::Kind::logical_and: {
        Value left = eval(*e.args[0], frame);
        return truthy(left) ? eval(*e.args[1], frame) : left;
      }
      case Expr::Kind::logical_or: {
        Value left = eval(*e.args[0], frame);
        return truthy(left) ? left : eval(*e.args[1], frame);
      }
      case Expr::Kind::conditional:
        if (truthy(eval(*e.args[1], frame))) return eval(*e.args[0], frame);
        return e.args[2] ? eval(*e.args[2], frame) : Value::undefined();
      case Expr::Kind::binary:
        return binary(e.name, eval(*e.args[0], frame), eval(*e.args[1], frame));
    }
    return Value::undefined();
  }

  // Attribute access as jinja2's sandbox does it: dict keys, namespace attributes; undefined
  // when missing; an error only on an undefined object itself.
  Value attribute(const Value& object, const std::string& name) {
    if (object.is_undefined()) {
      throw TemplateError("'" +
                          (object.undefined_hint.empty() ? std::string("value") : object.undefined_hint) +
                          "' is undefined (reading '." + name + "')");
    }
    if (object.kind == Value::Kind::name_space) {
      auto it = object.name_space->find(name);
      return it == object.name_space->end() ? Value::undefined(name) : Value::of(*it);
    }
    if (object.is_data() && object.data.is_object()) {
      auto it = object.data.find(name);
      if (it != object.data.end()) return Value::of(*it);
    }
    return Value::undefined(name);
  }

  CallArgs eval_args(const Expr& e, Frame& frame) {
    CallArgs args;
    for (std::size_t i = 1; i < e.args.size(); ++i) args.positional.push_back(eval(*e.args[i], frame));
    for (const auto& [key, value] : e.kwargs) args.keyword.emplace_back(key, eval(*value, frame));
    return args;
  }

  Value call_filter(const Expr& e, Value input, Frame& frame) {
    CallArgs args = eval_args(e, frame);
    return apply_filter(e.name, input, args);
  }

  Value eval_call(const Expr& e, Frame& frame, const Value* caller) {
    const Expr& callee = *e.args[0];
    CallArgs args = eval_args(e, frame);
    if (caller) args.keyword.emplace_back("caller", *caller);
    if (callee.kind == Expr::Kind::attribute) {
      Value object = eval(*callee.args[0], frame);
      if (object.is_undefined()) {
        throw TemplateError("'" + object.undefined_hint + "' is undefined (calling '." + callee.name +
                            "()')");
      }
      if (std::optional<Value> result = call_method(object, callee.name, args)) return *result;
      Value function = attribute(object, callee.name);
      if (function.kind != Value::Kind::callable) {
        throw TemplateError("'" + type_name(object) + "' object has no method '" + callee.name + "'");
      }
      return (*function.call)(args);
    }
    Value function = eval(callee, frame);
    if (function.kind != Value::Kind::callable) {
      throw TemplateError("'" + (function.is_undefined() ? function.undefined_hint : type_name(function)) +
                          "' is not callable");
    }
    return (*function.call)(args);
  }

  static bool is_number(const Json& d) { return d.is_number() || d.is_boolean(); }
  static double as_double(const Json& d) { return d.is_boolean() ? double(d.get<bool>()) : d.get<double>(); }
  static std::int64_t as_int(const Json& d) {
    return d.is_boolean() ? std::int64_t(d.get<bool>()) : d.get<std::int64_t>();
  }

  Value binary(const std::string& op, const Value& left, const Value& right) {
    if (op == "~") return Value::of(to_python_str(left) + to_python_str(right));
    if (op == "==") return Value::of(python_equal(left, right));
    if (op == "!=") return Value::of(!python_equal(left, right));
    if (op == "in" || op == "not in") {
      CallArgs args;
      args.positional.push_back(right);
      if (right.is_undefined()) return Value::of(op != "in");  // Undefined iterates as empty
      return Value::of(apply_test("in", left, args) == (op == "in"));
    }
    const Json& a = require_data(left, "operator " + op);
    const Json& b = require_data(right, "operator " + op);
    const bool ints = (a.is_number_integer() || a.is_boolean()) && (b.is_number_integer() || b.is_boolean());
    if (op == "<" || op == ">" || op == "<=" || op == ">=") {
      int cmp = 0;
      if (is_number(a) && is_number(b)) {
        cmp = as_double(a) < as_double(b) ? -1 : as_double(a) > as_double(b) ? 1 : 0;
      } else if (a.is_string() && b.is_string()) {
        cmp = a.get_ref<const std::string&>().compare(b.get_ref<const std::string&>());
      } else {
        throw TemplateError("'" + op + "' not supported between '" + type_name(left) + "' and '" +
                            type_name(right) + "'");
      }
      if (op == "<") return Value::of(cmp < 0);
      if (op == ">") return Value::of(cmp > 0);
      if (op == "<=") return Value::of(cmp <= 0);
      return Value::of(cmp >= 0);
    }
    if (op == "+") {
      if (a.is_string() && b.is_string()) {
        if (!left.markup && !right.markup) return Value::of(a.get<std::string>() + b.get<std::string>());
        Value joined = Value::of((left.markup ? a.get<std::string>() : html_escape(a.get<std::string>())) +
                                 (right.markup ? b.get<std::string>() : html_escape(b.get<std::string>())));
        joined.markup = true;
        return joined;
      }
      if (a.is_array() && b.is_array()) {
        Json out = a;
        for (const Json& item : b) out.push_back(item);
        return Value::of(out);
      }
    }
    if (op == "*") {
      const bool a_seq = a.is_string() || a.is_array();
      const bool b_seq = b.is_string() || b.is_array();
      if ((a_seq && b.is_number_integer()) || (b_seq && a.is_number_integer())) {
        const Json& seq = a_seq ? a : b;
        const std::int64_t times = a_seq ? b.get<std::int64_t>() : a.get<std::int64_t>();
        Json out = seq.is_string() ? Json("") : Json::array();
        for (std::int64_t i = 0; i < times && i < 100000; ++i) {
          if (seq.is_string()) {
            out.get_ref<std::string&>() += seq.get_ref<const std::string&>();
          } else {
            for (const Json& item : seq) out.push_back(item);
          }
        }
        return Value::of(out);
      }
    }
    if (!is_number(a) || !is_number(b)) {
      throw TemplateError("unsupported operand types for " + op + ": '" + type_name(left) + "' and '" +
                          type_name(right) + "'");
    }
    // Python's ints are unbounded and ours are int64: a result past 64 bits is the template's error,
    // never signed overflow (undefined behaviour; `**` found by tests/fuzz/chat_template_fuzz).
    const auto overflow = [] { return TemplateError("integer overflow: results past 64 bits are not supported"); };
    if (ints && (op == "+" || op == "-" || op == "*")) {
      const std::int64_t x = as_int(a), y = as_int(b);
      std::int64_t r = 0;
      const bool overflowed = op == "+"   ? __builtin_add_overflow(x, y, &r)
                              : op == "-" ? __builtin_sub_overflow(x, y, &r)
                                          : __builtin_mul_overflow(x, y, &r);
      if (overflowed) throw overflow();
      return Value::of(r);
    }
    if (op == "+") return Value::of(as_double(a) + as_double(b));
    if (op == "-") return Value::of(as_double(a) - as_double(b));
    if (op == "*") return Value::of(as_double(a) * as_double(b));
    if (op == "/") {
      if (as_double(b) == 0) throw TemplateError("division by zero");
      return Value::of(as_double(a) / as_double(b));
    }
    if (op == "//" || op == "%") {
      if (as_double(b) == 0) throw TemplateError("integer division or modulo by zero");
      if (ints) {
        std::int64_t x = as_int(a), y = as_int(b);
        if (x == std::numeric_limits<std::int64_t>::min() && y == -1) {
          if (op == "%") return Value::of(std::int64_t{0});
          throw overflow();
        }
        std::int64_t q = x / y;
        if ((x % y != 0) && ((x < 0) != (y < 0))) --q;
        return op == "//" ? Value::of(q) : Value::of(x - q * y);
      }
      double q = std::floor(as_double(a) / as_double(b));
      return op == "//" ? Value::of(q) : Value::of(as_double(a) - q * as_double(b));
    }
    if (op == "**") {
      double r = std::pow(as_double(a), as_double(b));
      if (!ints || as_int(b) < 0) return Value::of(r);
      if (!(r >= -0x1p63 && r < 0x1p63)) throw overflow();
      return Value::of(std::int64_t(r));
    }
    throw TemplateError("unknown operator " + op);
  }

  const Json& context_;
  std::time_t now_;
  const Frame* root_ = nullptr;
  int depth_ = 0;
};

}  // namespace

std::string render_program(const TemplateProgram& program, const Json& context, std::time_t now) {
  return Renderer(context, now).run(program);
}

}  // namespace pagedserve::chat_template
