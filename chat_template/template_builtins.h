// jinja2's filters and tests, Python's str/dict methods, and the globals HF gives chat templates
// (range, namespace, dict, raise_exception, strftime_now), over template values.
//
// Internal to chat_template/; pure functions (strftime_now reads the clock given to it), any thread.
#pragma once

#include <ctime>
#include <optional>
#include <string>
#include <string_view>

#include "chat_template/template_value.h"

namespace pagedserve::chat_template {

// Throws TemplateError for an unknown filter or bad arguments.
Value apply_filter(std::string_view name, const Value& input, const CallArgs& args);
bool apply_test(std::string_view name, const Value& input, const CallArgs& args);

// A Python method of a str, dict or list value; nullopt when the type has no such method.
std::optional<Value> call_method(const Value& object, std::string_view name, const CallArgs& args);

// A global function by name (range, namespace, dict, raise_exception, strftime_now); undefined when
// there is none. `now` is what strftime_now formats.
Value global_function(std::string_view name, std::time_t now);

// Python string helpers shared with the renderer.
std::string python_strip(std::string_view text, std::string_view chars, bool left, bool right);
Value python_slice(const Value& target, const Value& start, const Value& stop, const Value& step);
Value python_index(const Value& target, const Value& index);

}  // namespace pagedserve::chat_template
