// Python's str and dict methods that chat templates call, the globals HF provides, and Python
// indexing and slicing (by code point for strings).
#include <algorithm>
#include <cctype>
#include <cstdint>
#include <ctime>

#include "chat_template/template_builtins.h"
#include "chat_template/template_error.h"

namespace pagedserve::chat_template {
namespace {

constexpr std::string_view kWhitespace = " \t\n\r\f\v";

std::string arg_string(const CallArgs& args, std::size_t i, std::string_view name, std::string_view method) {
  const Value& v = args.get(i, name);
  if (!v.is_string()) throw TemplateError(std::string(method) + "() expects a string argument");
  return v.str();
}

std::int64_t arg_int(const Value& v, std::int64_t fallback) {
  if (v.is_data() && v.data.is_number()) return v.data.get<std::int64_t>();
  return fallback;
}

std::vector<std::string> split(const std::string& s, const Value& sep_value, std::int64_t max_split) {
  std::vector<std::string> parts;
  if (sep_value.is_undefined() || sep_value.is_none()) {
    std::size_t i = 0;
    while (true) {
      while (i < s.size() && kWhitespace.find(s[i]) != std::string_view::npos) ++i;
      if (i >= s.size()) break;
      if (max_split >= 0 && std::int64_t(parts.size()) == max_split) {
        std::string rest = s.substr(i);
        parts.push_back(python_strip(rest, {}, false, true));
        break;
      }
      std::size_t j = i;
      while (j < s.size() && kWhitespace.find(s[j]) == std::string_view::npos) ++j;
      parts.push_back(s.substr(i, j - i));
      i = j;
    }
    return parts;
  }
  if (!sep_value.is_string() || sep_value.str().empty()) throw TemplateError("split(): bad separator");
  const std::string& sep = sep_value.str();
  std::size_t start = 0;
  while (true) {
    std::size_t hit = s.find(sep, start);
    if (hit == std::string::npos || (max_split >= 0 && std::int64_t(parts.size()) == max_split)) {
      parts.push_back(s.substr(start));
      return parts;
    }
    parts.push_back(s.substr(start, hit - start));
    start = hit + sep.size();
  }
}

std::string replace_all(std::string s, const std::string& from, const std::string& to, std::int64_t count) {
  if (from.empty()) return s;
  std::size_t pos = 0;
  for (std::int64_t n = 0; count < 0 || n < count; ++n) {
    pos = s.find(from, pos);
    if (pos == std::string::npos) break;
    s.replace(pos, from.size(), to);
    pos += to.size();
  }
  return s;
}

bool affix_matches(const std::string& s, const Value& affix, bool prefix) {
  auto one = [&](const std::string& a) {
    if (a.size() > s.size()) return false;
    return prefix ? s.compare(0, a.size(), a) == 0 : s.compare(s.size() - a.size(), a.size(), a) == 0;
  };
  if (affix.is_string()) return one(affix.str());
  if (affix.is_data() && affix.data.is_array()) {
    for (const Json& a : affix.data) {
      if (a.is_string() && one(a.get<std::string>())) return true;
    }
    return false;
  }
  throw TemplateError(std::string(prefix ? "startswith" : "endswith") + "() expects a string or a tuple");
}

std::string title_case(const std::string& s) {
  std::string out = s;
  bool previous_cased = false;
  for (char& c : out) {
    const bool alpha = std::isalpha(static_cast<unsigned char>(c));
    if (alpha) c = previous_cased ? char(std::tolower(c)) : char(std::toupper(c));
    previous_cased = alpha;
  }
  return out;
}

std::string capitalize(const std::string& s) {
  std::string out = s;
  for (char& c : out) c = char(std::tolower(static_cast<unsigned char>(c)));
  if (!out.empty()) out[0] = char(std::toupper(static_cast<unsigned char>(out[0])));
  return out;
}

// str.format with "{}", "{0}" and "{name}" fields (no format specs).
std::string python_format(const std::string& pattern, const CallArgs& args) {
  std::string out;
  std::size_t next_auto = 0;
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    char c = pattern[i];
    if (c == '{' && i + 1 < pattern.size() && pattern[i + 1] == '{') {
      out += '{';
      ++i;
    } else if (c == '}' && i + 1 < pattern.size() && pattern[i + 1] == '}') {
      out += '}';
      ++i;
    } else if (c == '{') {
      std::size_t end = pattern.find('}', i);
      if (end == std::string::npos) throw TemplateError("format(): unmatched '{'");
      std::string field = pattern.substr(i + 1, end - i - 1);
      const Value* v = nullptr;
      static const Value missing;
      if (field.empty()) {
        v = next_auto < args.positional.size() ? &args.positional[next_auto] : &missing;
        ++next_auto;
      } else if (std::isdigit(static_cast<unsigned char>(field[0]))) {
        std::size_t k = std::stoul(field);
        v = k < args.positional.size() ? &args.positional[k] : &missing;
      } else {
        v = &args.get(std::size_t(-1), field);
      }
      if (v->is_undefined()) throw TemplateError("format(): missing argument '" + field + "'");
      out += to_python_str(*v);
      i = end;
    } else {
      out += c;
    }
  }
  return out;
}

std::optional<Value> string_method(const std::string& s, std::string_view name, const CallArgs& args) {
  auto chars_arg = [&]() -> std::string {
    const Value& v = args.get(0, "chars");
    if (v.is_undefined() || v.is_none()) return {};
    if (!v.is_string()) throw TemplateError("strip(): chars must be a string");
    return v.str().empty() ? std::string("\x01") : v.str();  // "" strips nothing
  };
  if (name == "strip") return Value::of(python_strip(s, chars_arg(), true, true));
  if (name == "lstrip") return Value::of(python_strip(s, chars_arg(), true, false));
  if (name == "rstrip") return Value::of(python_strip(s, chars_arg(), false, true));
  if (name == "upper" || name == "lower") {
    std::string out = s;
    for (char& c : out)
      c = char(name == "upper" ? std::toupper(static_cast<unsigned char>(c))
                               : std::tolower(static_cast<unsigned char>(c)));
    return Value::of(out);
  }
  if (name == "title") return Value::of(title_case(s));
  if (name == "capitalize") return Value::of(capitalize(s));
  if (name == "split") {
    Json parts = Json::array();
    for (std::string& p : split(s, args.get(0, "sep"), arg_int(args.get(1, "maxsplit"), -1)))
      parts.push_back(p);
    return Value::of(parts);
  }
  if (name == "startswith" || name == "endswith") {
    return Value::of(
        affix_matches(s, args.get(0, name == "startswith" ? "prefix" : "suffix"), name == "startswith"));
  }
  if (name == "replace") {
    return Value::of(replace_all(s, arg_string(args, 0, "old", name), arg_string(args, 1, "new", name),
                                 arg_int(args.get(2, "count"), -1)));
  }
  if (name == "find" || name == "rfind" || name == "count") {
    std::string needle = arg_string(args, 0, "sub", name);
    if (name == "count") {
      std::int64_t n = 0;
      for (std::size_t p = s.find(needle); p != std::string::npos && !needle.empty();
           p = s.find(needle, p + needle.size()))
        ++n;
      return Value::of(n);
    }
    std::size_t hit = name == "find" ? s.find(needle) : s.rfind(needle);
    if (hit == std::string::npos) return Value::of(-1);
    return Value::of(std::int64_t(code_point_count(std::string_view(s).substr(0, hit))));
  }
  if (name == "join") {
    const Value& items = args.get(0, "iterable");
    std::string out;
    bool first = true;
    for (const Json& item : require_data(items, "join()")) {
      if (!item.is_string()) throw TemplateError("join(): sequence item is not a string");
      if (!first) out += s;
      first = false;
      out += item.get<std::string>();
    }
    return Value::of(out);
  }
  if (name == "format") return Value::of(python_format(s, args));
  if (name == "isdigit" || name == "isalpha" || name == "isspace" || name == "isalnum") {
    if (s.empty()) return Value::of(false);
    bool all = true;
    for (unsigned char c : s) {
      all = all && (name == "isdigit"   ? std::isdigit(c)
                    : name == "isalpha" ? std::isalpha(c)
                    : name == "isspace" ? std::isspace(c)
                                        : std::isalnum(c));
    }
    return Value::of(all);
  }
  if (name == "splitlines") {
    Json lines = Json::array();
    std::size_t start = 0;
    while (start < s.size()) {
      std::size_t end = s.find('\n', start);
      if (end == std::string::npos) end = s.size();
      lines.push_back(s.substr(start, end - start));
      start = end + 1;
    }
    return Value::of(lines);
  }
  return std::nullopt;
}

std::optional<Value> dict_method(const Json& d, std::string_view name, const CallArgs& args) {
  if (name == "get") {
    const Value& key = args.get(0, "key");
    if (key.is_data()) {
      auto it = d.find(encode_key(key.data));
      if (it != d.end()) return Value::of(*it);
    }
    const Value& fallback = args.get(1, "default");
    return fallback.is_undefined() ? Value::of(nullptr) : fallback;
  }
  if (name == "items" || name == "keys" || name == "values") {
    Json out = Json::array();
    for (auto it = d.begin(); it != d.end(); ++it) {
      if (name == "items") out.push_back(Json::array({decode_key(it.key()), it.value()}));
      if (name == "keys") out.push_back(decode_key(it.key()));
      if (name == "values") out.push_back(it.value());
    }
    return Value::of(out);
  }
  return std::nullopt;
}

std::string strftime_at(const std::string& format, std::time_t now) {
  std::tm local{};
  localtime_r(&now, &local);
  std::string out(format.size() * 4 + 64, '\0');
  std::size_t n = std::strftime(out.data(), out.size(), format.c_str(), &local);
  out.resize(n);
  return out;
}

}  // namespace

std::string python_strip(std::string_view text, std::string_view chars, bool left, bool right) {
  if (chars.empty()) chars = kWhitespace;
  std::size_t begin = 0;
  std::size_t end = text.size();
  if (left) {
    while (begin < end && chars.find(text[begin]) != std::string_view::npos) ++begin;
  }
  if (right) {
    while (end > begin && chars.find(text[end - 1]) != std::string_view::npos) --end;
  }
  return std::string(text.substr(begin, end - begin));
}

std::optional<Value> call_method(const Value& object, std::string_view name, const CallArgs& args) {
  if (!object.is_data()) return std::nullopt;
  if (object.data.is_string()) return string_method(object.str(), name, args);
  if (object.data.is_object()) return dict_method(object.data, name, args);
  return std::nullopt;
}

Value global_function(std::string_view name, std::time_t now) {
  if (name == "range") {
    return Value::function([](CallArgs& args) {
      std::int64_t start = 0, stop = 0, step = 1;
      const auto& p = args.positional;
      auto number = [](const Value& v) {
        if (!v.is_data() || !v.data.is_number()) throw TemplateError("range() expects integers");
        return v.data.get<std::int64_t>();
      };
      if (p.size() == 1) {
        stop = number(p[0]);
      } else if (p.size() >= 2) {
        start = number(p[0]);
        stop = number(p[1]);
        if (p.size() > 2) step = number(p[2]);
      }
      if (step == 0) throw TemplateError("range() step must not be zero");
      Json out = Json::array();
      for (std::int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
        if (out.size() > 100000) throw TemplateError("range() too large");
        out.push_back(i);
      }
      return Value::of(out);
    });
  }
  if (name == "namespace" || name == "dict") {
    const bool is_namespace = name == "namespace";
    return Value::function([is_namespace](CallArgs& args) {
      Json object = Json::object();
      for (const Value& p : args.positional) {
        if (p.is_data() && p.data.is_object()) object.update(p.data);
      }
      for (const auto& [key, value] : args.keyword)
        object[key] = value.is_data() ? value.data : Json(nullptr);
      if (!is_namespace) return Value::of(object);
      Value v;
      v.kind = Value::Kind::name_space;
      v.name_space = std::make_shared<Json>(std::move(object));
      return v;
    });
  }
  if (name == "raise_exception") {
    return Value::function(
        [](CallArgs& args) -> Value { throw TemplateError(to_python_str(args.get(0, "message"))); });
  }
  if (name == "strftime_now") {
    return Value::function([now](CallArgs& args) {
      const Value& format = args.get(0, "format");
      if (!format.is_string()) throw TemplateError("strftime_now() expects a format string");
      return Value::of(strftime_at(format.str(), now));
    });
  }
  return Value::undefined(std::string(name));
}

Value python_index(const Value& target, const Value& index) {
  const Json& d = target.data;
  if (d.is_object()) {
    if (index.is_data()) {
      auto it = d.find(encode_key(index.data));
      if (it != d.end()) return Value::of(*it);
    }
    return Value::undefined(index.is_data() ? to_python_str(index) : std::string());
  }
  if ((d.is_array() || d.is_string()) && index.is_data() && index.data.is_number_integer()) {
    std::int64_t i = index.data.get<std::int64_t>();
    if (d.is_array()) {
      const auto n = std::int64_t(d.size());
      if (i < 0) i += n;
      if (i < 0 || i >= n) return Value::undefined("index " + std::to_string(i));
      return Value::of(d[std::size_t(i)]);
    }
    const std::string& s = d.get_ref<const std::string&>();
    std::vector<std::size_t> offsets = code_point_offsets(s);
    const auto n = std::int64_t(offsets.size() - 1);
    if (i < 0) i += n;
    if (i < 0 || i >= n) return Value::undefined("index " + std::to_string(i));
    return Value::of(
        s.substr(offsets[std::size_t(i)], offsets[std::size_t(i) + 1] - offsets[std::size_t(i)]));
  }
  return Value::undefined(to_python_str(index));
}

Value python_slice(const Value& target, const Value& start_value, const Value& stop_value,
                   const Value& step_value) {
  const Json& d = require_data(target, "slice");
  if (!d.is_array() && !d.is_string()) throw TemplateError("cannot slice a " + type_name(target));
  std::vector<std::size_t> offsets;
  std::int64_t n = 0;
  if (d.is_string()) {
    offsets = code_point_offsets(d.get_ref<const std::string&>());
    n = std::int64_t(offsets.size() - 1);
  } else {
    n = std::int64_t(d.size());
  }
  auto given = [](const Value& v) { return v.is_data() && v.data.is_number_integer(); };
  const std::int64_t step = given(step_value) ? step_value.data.get<std::int64_t>() : 1;
  if (step == 0) throw TemplateError("slice step cannot be zero");
  auto clamp = [&](const Value& v, std::int64_t fallback) {
    if (!given(v)) return fallback;
    std::int64_t i = v.data.get<std::int64_t>();
    if (i < 0) i += n;
    if (step > 0) return std::clamp<std::int64_t>(i, 0, n);
    return std::clamp<std::int64_t>(i, -1, n - 1);
  };
  const std::int64_t start = clamp(start_value, step > 0 ? 0 : n - 1);
  const std::int64_t stop = clamp(stop_value, step > 0 ? n : -1);
  std::vector<std::int64_t> picked;
  for (std::int64_t i = start; step > 0 ? i < stop : i > stop; i += step) picked.push_back(i);
  if (d.is_array()) {
    Json out = Json::array();
    for (std::int64_t i : picked) out.push_back(d[std::size_t(i)]);
    return Value::of(out);
  }
  const std::string& s = d.get_ref<const std::string&>();
  std::string out;
  for (std::int64_t i : picked)
    out += s.substr(offsets[std::size_t(i)], offsets[std::size_t(i) + 1] - offsets[std::size_t(i)]);
  return Value::of(out);
}

}  // namespace pagedserve::chat_template
