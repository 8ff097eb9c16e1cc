#include "chat_template/template_value.h"

#include <algorithm>
#include <cstdio>

#include "chat_template/template_error.h"

namespace pagedserve::chat_template {

Value Value::undefined(std::string hint) {
  Value v;
  v.undefined_hint = std::move(hint);
  return v;
}

Value Value::of(Json data) {
  Value v;
  v.kind = Kind::data;
  v.data = std::move(data);
  return v;
}

Value Value::function(Callable call) {
  Value v;
  v.kind = Kind::callable;
  v.call = std::make_shared<Callable>(std::move(call));
  return v;
}

const Value& CallArgs::get(std::size_t i, std::string_view name) const {
  static const Value missing;
  if (i < positional.size()) return positional[i];
  for (const auto& [key, value] : keyword) {
    if (key == name) return value;
  }
  return missing;
}

constexpr char kNonStringKey = '\x01';

Json decode_key(const std::string& key) {
  if (key.empty() || key[0] != kNonStringKey) return key;
  return Json::parse(key.substr(1), nullptr, false);
}

std::string encode_key(const Json& key) {
  if (key.is_string()) return key.get<std::string>();
  std::string encoded(1, kNonStringKey);
  encoded.append(key.dump());
  return encoded;
}

bool truthy(const Value& value) {
  if (value.generator) return true;
  switch (value.kind) {
    case Value::Kind::undefined:
      return false;
    case Value::Kind::callable:
    case Value::Kind::name_space:
      return true;
    case Value::Kind::data:
      break;
  }
  const Json& d = value.data;
  if (d.is_null()) return false;
  if (d.is_boolean()) return d.get<bool>();
  if (d.is_number_float()) return d.get<double>() != 0.0;
  if (d.is_number()) return d.get<std::int64_t>() != 0;
  if (d.is_string()) return !d.get_ref<const std::string&>().empty();  // json::empty() is false for strings
  if (d.is_array() || d.is_object()) return !d.empty();
  return true;
}

namespace {

std::string float_repr(double x) {
  Json j = x;
  std::string s = j.dump();
  if (s == "null") return x != x ? "nan" : (x > 0 ? "inf" : "-inf");
  return s;
}

std::string string_repr(const std::string& s) {
  const bool has_single = s.find('\'') != std::string::npos;
  const bool has_double = s.find('"') != std::string::npos;
  const char quote = (has_single && !has_double) ? '"' : '\'';
  std::string out(1, quote);
  for (unsigned char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == quote) {
      out += '\\';
      out += char(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += char(c);
    }
  }
  out += quote;
  return out;
}

void append_json_string(std::string& out, const std::string& s) {
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += char(c);
        }
    }
  }
  out += '"';
}

struct DumpStyle {
  int indent;
  bool has_indent;
  std::string item_separator;
  std::string key_separator;
  bool sort_keys;
};

void dump_json(std::string& out, const Json& d, const DumpStyle& style, int depth) {
  auto newline = [&](int level) {
    if (!style.has_indent) return;
    out += '\n';
    out.append(std::size_t(std::max(0, style.indent) * level), ' ');
  };
  if (d.is_object()) {
    if (d.empty()) {
      out += "{}";
      return;
    }
    std::vector<std::pair<std::string, const Json*>> items;
    for (auto it = d.begin(); it != d.end(); ++it) {
      Json key = decode_key(it.key());
      items.emplace_back(key.is_string() ? key.get<std::string>() : python_repr(key), &it.value());
    }
    if (style.sort_keys) {
      std::stable_sort(items.begin(), items.end(), [](auto& a, auto& b) { return a.first < b.first; });
    }
    out += '{';
    bool first = true;
    for (const auto& [key, value] : items) {
      if (!first) out += style.item_separator;
      first = false;
      newline(depth + 1);
      append_json_string(out, key);
      out += style.key_separator;
      dump_json(out, *value, style, depth + 1);
    }
    newline(depth);
    out += '}';
  } else if (d.is_array()) {
    if (d.empty()) {
      out += "[]";
      return;
    }
    out += '[';
    bool first = true;
    for (const Json& item : d) {
      if (!first) out += style.item_separator;
      first = false;
      newline(depth + 1);
      dump_json(out, item, style, depth + 1);
    }
    newline(depth);
    out += ']';
  } else if (d.is_string()) {
    append_json_string(out, d.get_ref<const std::string&>());
  } else if (d.is_number_float()) {
    std::string s = float_repr(d.get<double>());
    out += s == "nan" ? "NaN" : s == "inf" ? "Infinity" : s == "-inf" ? "-Infinity" : s;
  } else {
    out += d.dump();
  }
}

}  // namespace

std::string python_repr(const Json& d) {
  if (d.is_null()) return "None";
  if (d.is_boolean()) return d.get<bool>() ? "True" : "False";
  if (d.is_number_float()) return float_repr(d.get<double>());
  if (d.is_number()) return d.dump();
  if (d.is_string()) return string_repr(d.get_ref<const std::string&>());
  std::string out;
  if (d.is_array()) {
    out += '[';
    bool first = true;
    for (const Json& item : d) {
      if (!first) out += ", ";
      first = false;
      out += python_repr(item);
    }
    out += ']';
    return out;
  }
  out += '{';
  bool first = true;
  for (auto it = d.begin(); it != d.end(); ++it) {
    if (!first) out += ", ";
    first = false;
    out += python_repr(decode_key(it.key()));
    out += ": ";
    out += python_repr(it.value());
  }
  out += '}';
  return out;
}

std::string to_python_str(const Value& value) {
  switch (value.kind) {
    case Value::Kind::undefined:
      return "";
    case Value::Kind::callable:
      return "<function>";
    case Value::Kind::name_space:
      return "<Namespace " + python_repr(*value.name_space) + ">";
    case Value::Kind::data:
      break;
  }
  if (value.data.is_string()) return value.str();
  return python_repr(value.data);
}

std::string python_json_dumps(const Json& data, int indent, bool has_indent,
                              const std::string& item_separator, const std::string& key_separator,
                              bool sort_keys) {
  std::string out;
  dump_json(out, data, DumpStyle{indent, has_indent, item_separator, key_separator, sort_keys}, 0);
  return out;
}

std::string html_escape(std::string_view text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&#34;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

bool python_equal(const Value& a, const Value& b) {
  if (a.is_undefined() || b.is_undefined()) return a.is_undefined() && b.is_undefined();
  if (!a.is_data() || !b.is_data()) return false;
  const Json& x = a.data;
  const Json& y = b.data;
  // Python: True == 1, 1 == 1.0.
  auto numeric = [](const Json& j) { return j.is_number() || j.is_boolean(); };
  if (numeric(x) && numeric(y)) {
    auto as_double = [](const Json& j) { return j.is_boolean() ? double(j.get<bool>()) : j.get<double>(); };
    if (x.is_number_integer() && y.is_number_integer()) return x.get<std::int64_t>() == y.get<std::int64_t>();
    return as_double(x) == as_double(y);
  }
  return x == y;
}

const Json& require_data(const Value& value, std::string_view what) {
  if (value.generator && (what == "tojson" || what == "length")) {
    throw TemplateError(std::string(what) + ": a generator (select/map result) needs '|list' first");
  }
  if (value.is_data()) return value.data;
  if (value.kind == Value::Kind::name_space) return *value.name_space;
  if (value.is_undefined()) {
    throw TemplateError(std::string(what) + ": '" + value.undefined_hint + "' is undefined");
  }
  throw TemplateError(std::string(what) + ": a function is not a value");
}

std::string type_name(const Value& value) {
  switch (value.kind) {
    case Value::Kind::undefined:
      return "Undefined";
    case Value::Kind::callable:
      return "function";
    case Value::Kind::name_space:
      return "Namespace";
    case Value::Kind::data:
      break;
  }
  const Json& d = value.data;
  if (d.is_null()) return "NoneType";
  if (d.is_boolean()) return "bool";
  if (d.is_number_float()) return "float";
  if (d.is_number()) return "int";
  if (d.is_string()) return "str";
  if (d.is_array()) return "list";
  return "dict";
}

std::vector<std::size_t> code_point_offsets(std::string_view text) {
  std::vector<std::size_t> offsets;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) offsets.push_back(i);
  }
  offsets.push_back(text.size());
  return offsets;
}

std::size_t code_point_count(std::string_view text) { return code_point_offsets(text).size() - 1; }

}  // namespace pagedserve::chat_template
