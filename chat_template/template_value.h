// The values a template computes with: JSON data (nlohmann::ordered_json keeps the key order of
// the request, as Python dicts do), jinja2's Undefined, callables (macros, globals, bound
// methods) and namespace() objects (mutable, shared by reference). Python's semantics where
// templates depend on them: truthiness, str(), repr(), ==, json.dumps.
//
// Internal to chat_template/; plain values, no threads.
#pragma once

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pagedserve::chat_template {

using Json = nlohmann::ordered_json;

struct Value;
struct CallArgs;
using Callable = std::function<Value(CallArgs&)>;

// Dict keys that are not strings (a template's `{0: 1}`) are kept in JSON objects with a prefix
// byte that cannot start a real key; these turn such a key back into its number and make one.
Json decode_key(const std::string& key);
std::string encode_key(const Json& key);

struct Value {
  enum class Kind { undefined, data, callable, name_space };
  Kind kind = Kind::undefined;
  Json data;                         // kind data
  std::shared_ptr<Callable> call;    // kind callable
  std::shared_ptr<Json> name_space;  // kind name_space: an object, shared between copies
  std::string undefined_hint;        // kind undefined: what was looked up, for error messages
  bool generator = false;            // made by select/map/...: always truthy, no len(), not JSON
  bool markup = false;  // a markupsafe.Markup string (|safe, |escape): `+` escapes the other side

  static Value undefined(std::string hint = {});
  static Value of(Json data);
  static Value function(Callable call);

  bool is_undefined() const { return kind == Kind::undefined; }
  bool is_data() const { return kind == Kind::data; }
  bool is_string() const { return is_data() && data.is_string(); }
  bool is_none() const { return is_data() && data.is_null(); }
  const std::string& str() const { return data.get_ref<const std::string&>(); }
};

// Arguments of one call: positional, then keyword (in call order).
struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;

  // The i-th positional argument, or the keyword `name`, or undefined.
  const Value& get(std::size_t i, std::string_view name) const;
};

bool truthy(const Value& value);
// Python's str() / repr() of a value, as jinja2 prints it.
std::string to_python_str(const Value& value);
std::string python_repr(const Json& data);
// Python's json.dumps(x, ensure_ascii=False, indent, separators, sort_keys) — HF's tojson.
std::string python_json_dumps(const Json& data, int indent, bool has_indent,
                              const std::string& item_separator, const std::string& key_separator,
                              bool sort_keys);
bool python_equal(const Value& a, const Value& b);
std::string html_escape(std::string_view text);  // markupsafe.escape
// The data of a value for places that need JSON (lists, tojson); undefined is an error there.
const Json& require_data(const Value& value, std::string_view what);
std::string type_name(const Value& value);

// UTF-8 helpers: Python strings index by code point.
std::vector<std::size_t> code_point_offsets(std::string_view text);  // [code points + 1] byte offsets
std::size_t code_point_count(std::string_view text);

}  // namespace pagedserve::chat_template
