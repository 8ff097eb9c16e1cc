// jinja2's built-in filters and tests (the ones chat templates use), with HF's tojson.
#include <algorithm>
#include <cctype>
#include <cmath>

#include "chat_template/template_builtins.h"
#include "chat_template/template_error.h"

namespace pagedserve::chat_template {
namespace {

// The items a filter iterates: list items, dict keys, string characters; undefined is empty.
Json items_of(const Value& v, std::string_view filter) {
  if (v.is_undefined()) return Json::array();
  const Json& d = require_data(v, filter);
  if (d.is_array()) return d;
  Json out = Json::array();
  if (d.is_object()) {
    for (auto it = d.begin(); it != d.end(); ++it) out.push_back(decode_key(it.key()));
    return out;
  }
  if (d.is_string()) {
    const std::string& s = d.get_ref<const std::string&>();
    std::vector<std::size_t> offsets = code_point_offsets(s);
    for (std::size_t i = 0; i + 1 < offsets.size(); ++i)
      out.push_back(s.substr(offsets[i], offsets[i + 1] - offsets[i]));
    return out;
  }
  throw TemplateError(std::string(filter) + ": '" + type_name(v) + "' object is not iterable");
}

// jinja2's attribute lookup for filters: "a.b" walks dicts, digits index lists.
Value attribute_of(const Json& item, const std::string& path) {
  Value current = Value::of(item);
  std::size_t start = 0;
  while (start <= path.size()) {
    std::size_t dot = path.find('.', start);
    std::string part = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (!current.is_data()) return Value::undefined(part);
    if (!part.empty() &&
        std::all_of(part.begin(), part.end(),
                    [](char c) { return std::isdigit(static_cast<unsigned char>(c)); }) &&
        current.data.is_array()) {
      current = python_index(current, Value::of(std::stoll(part)));
    } else if (current.data.is_object()) {
      current = python_index(current, Value::of(part));
    } else {
      return Value::undefined(part);
    }
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return current;
}

CallArgs shifted(const CallArgs& args, std::size_t skip) {
  CallArgs rest;
  for (std::size_t i = skip; i < args.positional.size(); ++i) rest.positional.push_back(args.positional[i]);
  rest.keyword = args.keyword;
  return rest;
}

Value generator(Json items) {
  Value v = Value::of(std::move(items));
  v.generator = true;
  return v;
}

// jinja2's select/map family skip a falsy input ("if seq:"), so None is empty there.
Json lazy_items_of(const Value& v, std::string_view filter) {
  if (v.is_data() && v.data.is_null()) return Json::array();
  return items_of(v, filter);
}

Value select_items(const Value& input, const CallArgs& args, bool by_attribute, bool keep) {
  Json out = Json::array();
  for (const Json& item : lazy_items_of(input, "select")) {
    Value subject = Value::of(item);
    std::size_t next = 0;
    if (by_attribute) {
      const Value& attribute = args.get(0, "attribute");
      if (!attribute.is_string()) throw TemplateError("selectattr: attribute must be a string");
      subject = attribute_of(item, attribute.str());
      next = 1;
    }
    bool passed = false;
    if (next < args.positional.size()) {
      const Value& test = args.positional[next];
      if (!test.is_string()) throw TemplateError("select: test name must be a string");
      passed = apply_test(test.str(), subject, shifted(args, next + 1));
    } else {
      passed = truthy(subject);
    }
    if (passed == keep) out.push_back(item);
  }
  return generator(std::move(out));
}

std::string indent_text(std::string s, const Value& width, bool first, bool blank) {
  std::string indention =
      width.is_string()
          ? width.str()
          : std::string(std::size_t(width.is_data() && width.data.is_number() ? width.data.get<int>() : 4),
                        ' ');
  s += "\n";
  std::vector<std::string> lines;
  std::size_t start = 0;
  while (start < s.size()) {
    std::size_t end = s.find('\n', start);
    lines.push_back(s.substr(start, end - start));
    start = end + 1;
  }
  std::string out = first ? indention : std::string();
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (i > 0) {
      out.push_back('\n');
      if (blank || !lines[i].empty()) out.append(indention);
    }
    out.append(lines[i]);
  }
  return out;
}

bool json_less(const Json& a, const Json& b) {
  if (a.is_number() && b.is_number()) return a.get<double>() < b.get<double>();
  if (a.is_string() && b.is_string())
    return a.get_ref<const std::string&>() < b.get_ref<const std::string&>();
  throw TemplateError("cannot compare these values");
}

Value tojson(const Value& input, const CallArgs& args) {
  const Json& data = require_data(input, "tojson");
  const Value& indent = args.get(1, "indent");
  const bool has_indent = indent.is_data() && indent.data.is_number();
  std::string item_separator = has_indent ? "," : ", ";
  std::string key_separator = ": ";
  const Value& separators = args.get(2, "separators");
  if (separators.is_data() && separators.data.is_array() && separators.data.size() == 2) {
    item_separator = separators.data[0].get<std::string>();
    key_separator = separators.data[1].get<std::string>();
  }
  const bool sort_keys = truthy(args.get(3, "sort_keys"));
  return Value::of(python_json_dumps(data, has_indent ? indent.data.get<int>() : 0, has_indent,
                                     item_separator, key_separator, sort_keys));
}

}  // namespace

Value apply_filter(std::string_view name, const Value& input, const CallArgs& args) {
  if (name == "tojson") return tojson(input, args);
  if (name == "length" || name == "count") {
    if (input.is_undefined()) return Value::of(0);
    const Json& d = require_data(input, "length");
    if (d.is_string()) return Value::of(code_point_count(d.get_ref<const std::string&>()));
    if (d.is_array() || d.is_object()) return Value::of(d.size());
    throw TemplateError("object of type '" + type_name(input) + "' has no len()");
  }
  if (name == "default" || name == "d") {
    const bool boolean = truthy(args.get(1, "boolean"));
    if (input.is_undefined() || (boolean && !truthy(input))) {
      const Value& fallback = args.get(0, "default_value");
      return fallback.is_undefined() ? Value::of("") : fallback;
    }
    return input;
  }
  if (name == "safe") {
    Value v = input.is_string() ? input : Value::of(to_python_str(input));
    v.markup = true;
    return v;
  }
  if (name == "string") return input.markup ? input : Value::of(to_python_str(input));
  if (name == "trim") {
    const Value& chars = args.get(0, "chars");
    return Value::of(python_strip(to_python_str(input), chars.is_string() ? chars.str() : "", true, true));
  }
  if (name == "upper" || name == "lower" || name == "title" || name == "capitalize") {
    CallArgs none;
    return *call_method(Value::of(to_python_str(input)), name, none);
  }
  if (name == "replace") {
    CallArgs forwarded = args;
    return *call_method(Value::of(to_python_str(input)), "replace", forwarded);
  }
  if (name == "escape" || name == "e") {
    Value v = input.markup ? input : Value::of(html_escape(to_python_str(input)));
    v.markup = true;
    return v;
  }
  if (name == "join") {
    const Value& separator = args.get(0, "d");
    const Value& attribute = args.get(1, "attribute");
    std::string out;
    bool first = true;
    for (const Json& item : items_of(input, name)) {
      if (!first) out += separator.is_undefined() ? "" : to_python_str(separator);
      first = false;
      out += to_python_str(attribute.is_string() ? attribute_of(item, attribute.str()) : Value::of(item));
    }
    return Value::of(out);
  }
  if (name == "first" || name == "last") {
    Json items = items_of(input, name);
    if (items.empty()) return Value::undefined(std::string(name));
    return Value::of(name == "first" ? items.front() : items.back());
  }
  if (name == "list") return Value::of(items_of(input, name));
  if (name == "items") {
    if (input.is_undefined()) return Value::of(Json::array());
    const Json& d = require_data(input, name);
    if (!d.is_object()) throw TemplateError("items: expected a mapping, got " + type_name(input));
    CallArgs none;
    return *call_method(input, "items", none);
  }
  if (name == "dictsort") {
    const Json& d = require_data(input, name);
    if (!d.is_object()) throw TemplateError("dictsort: expected a mapping");
    std::vector<std::pair<Json, Json>> pairs;
    for (auto it = d.begin(); it != d.end(); ++it) pairs.emplace_back(decode_key(it.key()), it.value());
    const bool by_value = args.get(1, "by").is_string() && args.get(1, "by").str() == "value";
    const bool case_sensitive = truthy(args.get(0, "case_sensitive"));
    auto key = [&](const std::pair<Json, Json>& p) {
      Json k = by_value ? p.second : p.first;
      if (!case_sensitive && k.is_string()) {
        std::string s = k.get<std::string>();
        for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
        k = s;
      }
      return k;
    };
    std::stable_sort(pairs.begin(), pairs.end(), [&](auto& a, auto& b) { return json_less(key(a), key(b)); });
    if (truthy(args.get(2, "reverse"))) std::reverse(pairs.begin(), pairs.end());
    Json out = Json::array();
    for (auto& [k, v] : pairs) out.push_back(Json::array({k, v}));
    return Value::of(out);
  }
  if (name == "selectattr" || name == "rejectattr")
    return select_items(input, args, true, name == "selectattr");
  if (name == "select" || name == "reject") return select_items(input, args, false, name == "select");
  if (name == "map") {
    Json out = Json::array();
    const Value& attribute = args.get(std::size_t(-1), "attribute");
    for (const Json& item : lazy_items_of(input, name)) {
      if (attribute.is_string()) {
        Value v = attribute_of(item, attribute.str());
        if (v.is_undefined()) v = args.get(std::size_t(-1), "default");
        out.push_back(v.is_data() ? v.data : Json(nullptr));
      } else {
        const Value& filter = args.get(0, "");
        if (!filter.is_string()) throw TemplateError("map: expected a filter name or attribute=");
        Value v = apply_filter(filter.str(), Value::of(item), shifted(args, 1));
        out.push_back(v.is_data() ? v.data : Json(nullptr));
      }
    }
    return generator(std::move(out));
  }
  if (name == "unique") {
    Json out = Json::array();
    for (const Json& item : items_of(input, name)) {
      if (std::find(out.begin(), out.end(), item) == out.end()) out.push_back(item);
    }
    return Value::of(out);
  }
  if (name == "sort") {
    Json items = items_of(input, name);
    const Value& attribute = args.get(2, "attribute");
    std::vector<Json> v(items.begin(), items.end());
    auto key = [&](const Json& j) {
      return attribute.is_string() ? attribute_of(j, attribute.str()).data : j;
    };
    std::stable_sort(v.begin(), v.end(),
                     [&](const Json& a, const Json& b) { return json_less(key(a), key(b)); });
    if (truthy(args.get(0, "reverse"))) std::reverse(v.begin(), v.end());
    return Value::of(Json(v));
  }
  if (name == "reverse") {
    if (input.is_string()) return python_slice(input, Value(), Value(), Value::of(-1));
    Json items = items_of(input, name);
    std::reverse(items.begin(), items.end());
    return Value::of(items);
  }
  if (name == "min" || name == "max") {
    Json items = items_of(input, name);
    if (items.empty()) return Value::undefined(std::string(name));
    auto it = name == "min" ? std::min_element(items.begin(), items.end(), json_less)
                            : std::max_element(items.begin(), items.end(), json_less);
    return Value::of(*it);
  }
  if (name == "sum") {
    double total = 0;
    bool all_int = true;
    for (const Json& item : items_of(input, name)) {
      if (!item.is_number()) throw TemplateError("sum: items must be numbers");
      all_int = all_int && item.is_number_integer();
      total += item.get<double>();
    }
    return all_int ? Value::of(std::int64_t(total)) : Value::of(total);
  }
  if (name == "int") {
    const Json& d = input.is_data() ? input.data : Json(nullptr);
    if (d.is_number()) return Value::of(std::int64_t(d.get<double>()));
    if (d.is_boolean()) return Value::of(std::int64_t(d.get<bool>()));
    if (d.is_string()) {
      try {
        return Value::of(std::stoll(d.get<std::string>()));
      } catch (const std::exception&) {
      }
    }
    const Value& fallback = args.get(0, "default");
    return fallback.is_undefined() ? Value::of(0) : fallback;
  }
  if (name == "float") {
    const Json& d = input.is_data() ? input.data : Json(nullptr);
    if (d.is_number()) return Value::of(d.get<double>());
    if (d.is_string()) {
      try {
        return Value::of(std::stod(d.get<std::string>()));
      } catch (const std::exception&) {
      }
    }
    return Value::of(0.0);
  }
  if (name == "abs") {
    const Json& d = require_data(input, name);
    if (d.is_number_integer()) return Value::of(std::llabs(d.get<std::int64_t>()));
    return Value::of(std::fabs(d.get<double>()));
  }
  if (name == "indent") {
    return Value::of(indent_text(to_python_str(input), args.get(0, "width"), truthy(args.get(1, "first")),
                                 truthy(args.get(2, "blank"))));
  }
  if (name == "wordcount") {
    CallArgs none;
    return Value::of(call_method(Value::of(to_python_str(input)), "split", none)->data.size());
  }
  throw TemplateError("no filter named '" + std::string(name) + "'");
}

bool apply_test(std::string_view name, const Value& input, const CallArgs& args) {
  const Json& d = input.data;
  const bool data = input.is_data();
  if (name == "defined") return !input.is_undefined();
  if (name == "undefined") return input.is_undefined();
  if (name == "none") return data && d.is_null();
  if (name == "string") return data && d.is_string();
  if (name == "mapping") return (data && d.is_object()) || input.kind == Value::Kind::name_space;
  if (name == "iterable")
    return input.is_undefined() || (data && (d.is_string() || d.is_array() || d.is_object()));
  if (name == "sequence") return data && (d.is_string() || d.is_array() || d.is_object());
  if (name == "number") return data && (d.is_number() || d.is_boolean());
  if (name == "integer") return data && d.is_number_integer();
  if (name == "float") return data && d.is_number_float();
  if (name == "boolean") return data && d.is_boolean();
  if (name == "true") return data && d.is_boolean() && d.get<bool>();
  if (name == "false") return data && d.is_boolean() && !d.get<bool>();
  if (name == "callable") return input.kind == Value::Kind::callable;
  if (name == "equalto" || name == "eq" || name == "==" || name == "sameas")
    return python_equal(input, args.get(0, "other"));
  if (name == "ne" || name == "!=") return !python_equal(input, args.get(0, "other"));
  if (name == "lower" || name == "upper") {
    if (!input.is_string()) return false;
    for (unsigned char c : input.str()) {
      if (name == "lower" ? std::isupper(c) : std::islower(c)) return false;
    }
    return true;
  }
  if (name == "odd" || name == "even" || name == "divisibleby") {
    const std::int64_t v = require_data(input, name).get<std::int64_t>();
    if (name == "odd") return v % 2 != 0;
    if (name == "even") return v % 2 == 0;
    const std::int64_t by = require_data(args.get(0, "num"), name).get<std::int64_t>();
    return by != 0 && v % by == 0;
  }
  if (name == "in") {
    const Value& container = args.get(0, "seq");
    const Json& c = require_data(container, "in");
    if (c.is_string())
      return input.is_string() && c.get_ref<const std::string&>().find(input.str()) != std::string::npos;
    if (c.is_object()) return input.is_data() && c.contains(encode_key(input.data));
    if (c.is_array()) {
      for (const Json& item : c) {
        if (python_equal(input, Value::of(item))) return true;
      }
    }
    return false;
  }
  if (name == "gt" || name == "ge" || name == "lt" || name == "le" || name == ">" || name == "<" ||
      name == ">=" || name == "<=") {
    const Json& other = require_data(args.get(0, "other"), name);
    const Json& self = require_data(input, name);
    if (name == "gt" || name == ">") return json_less(other, self);
    if (name == "lt" || name == "<") return json_less(self, other);
    if (name == "ge" || name == ">=") return !json_less(self, other);
    return !json_less(other, self);
  }
  throw TemplateError("no test named '" + std::string(name) + "'");
}

}  // namespace pagedserve::chat_template
