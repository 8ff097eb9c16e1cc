#include "server/chat_tool_calls.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <optional>
#include <utility>

#include "server/completion_response.h"

namespace pagedserve {
namespace {

using nlohmann::ordered_json;

constexpr std::string_view kOpen = "<tool_call>";
constexpr std::string_view kClose = "</tool_call>";
constexpr std::string_view kPythonTag = "<|python_tag|>";
constexpr std::string_view kWhitespace = " \t\r\n";

std::string_view trim(std::string_view s) {
  const std::size_t first = s.find_first_not_of(kWhitespace);
  if (first == std::string_view::npos) return {};
  return s.substr(first, s.find_last_not_of(kWhitespace) - first + 1);
}

std::string make_call_id() { return "call_" + make_completion_id().substr(5, 24); }  // "cmpl-" + hex

// {"name": "...", "arguments" or "parameters": {...}}; the arguments may also come as a JSON
// string holding an object. Anything else is not a call.
std::optional<ToolCall> parse_call(std::string_view body) {
  ordered_json call = ordered_json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (call.is_discarded() || !call.is_object()) return std::nullopt;
  auto name = call.find("name");
  if (name == call.end() || !name->is_string() || name->get_ref<const std::string&>().empty())
    return std::nullopt;
  auto arguments = call.find("arguments");
  if (arguments == call.end()) arguments = call.find("parameters");
  ordered_json args = arguments == call.end() ? ordered_json::object() : *arguments;
  if (args.is_string()) args = ordered_json::parse(args.get<std::string>(), nullptr, false);
  if (args.is_null()) args = ordered_json::object();
  if (!args.is_object()) return std::nullopt;
  return ToolCall{make_call_id(), name->get<std::string>(),
                  args.dump(-1, ' ', false, ordered_json::error_handler_t::replace)};
}

ParsedToolCalls parse_hermes(std::string_view text) {
  ParsedToolCalls parsed;
  std::string content;
  std::size_t pos = 0;
  while (true) {
    const std::size_t open = text.find(kOpen, pos);
    if (open == std::string_view::npos) {
      content += text.substr(pos);
      break;
    }
    content += text.substr(pos, open - pos);
    const std::size_t close = text.find(kClose, open + kOpen.size());
    if (close == std::string_view::npos) return {std::string(text), {}};  // unterminated: all content
    std::optional<ToolCall> call = parse_call(text.substr(open + kOpen.size(), close - open - kOpen.size()));
    if (!call) return {std::string(text), {}};
    parsed.calls.push_back(std::move(*call));
    pos = close + kClose.size();
  }
  if (parsed.calls.empty()) return {std::string(text), {}};
  parsed.content = trim(content);
  return parsed;
}

ParsedToolCalls parse_llama3(std::string_view text) {
  std::string_view body = trim(text);
  if (body.starts_with(kPythonTag)) body = trim(body.substr(kPythonTag.size()));
  if (!body.starts_with('{')) return {std::string(text), {}};
  std::optional<ToolCall> call = parse_call(body);
  if (!call) return {std::string(text), {}};
  return {{}, {std::move(*call)}};
}

// How many bytes at the end of `text` could be the start of `tag` (a proper prefix of it).
std::size_t partial_suffix(std::string_view text, std::string_view tag) {
  for (std::size_t n = std::min(text.size(), tag.size() - 1); n > 0; --n) {
    if (text.substr(text.size() - n) == tag.substr(0, n)) return n;
  }
  return 0;
}

}  // namespace

ToolCallFormat tool_call_format_for(std::string_view template_source) {
  return template_source.find(kOpen) != std::string_view::npos ? ToolCallFormat::hermes
                                                               : ToolCallFormat::llama3_json;
}

ParsedToolCalls parse_tool_calls(ToolCallFormat format, std::string_view text) {
  switch (format) {
    case ToolCallFormat::hermes:
      return parse_hermes(text);
    case ToolCallFormat::llama3_json:
      return parse_llama3(text);
    case ToolCallFormat::none:
      break;
  }
  return {std::string(text), {}};
}

// Content whitespace is held until content follows it, so that whitespace before and after calls
// can be dropped as parse_tool_calls' trim drops it; leading whitespace goes once a call was seen.
void ToolCallStream::emit_content(ParsedToolCalls& out, std::string_view text, bool at_end) {
  if (!content_started_ && num_calls_ > 0) {
    whitespace_.clear();
    const std::size_t first = text.find_first_not_of(kWhitespace);
    text = first == std::string_view::npos ? std::string_view() : text.substr(first);
  }
  if (text.empty()) return;
  const std::size_t last = text.find_last_not_of(kWhitespace);
  if (last == std::string_view::npos) {
    whitespace_ += text;
  } else {
    out.content += whitespace_;
    out.content += text.substr(0, last + 1);
    whitespace_ = text.substr(last + 1);
    content_started_ = true;
  }
  if (at_end && num_calls_ == 0) out.content += std::exchange(whitespace_, {});
}

ParsedToolCalls ToolCallStream::scan_hermes(bool at_end) {
  ParsedToolCalls out;
  while (true) {
    const std::size_t open = held_.find(kOpen);
    if (open == std::string::npos) {
      const std::size_t keep = at_end ? 0 : partial_suffix(held_, kOpen);
      emit_content(out, std::string_view(held_).substr(0, held_.size() - keep), at_end);
      held_.erase(0, held_.size() - keep);
      return out;
    }
    emit_content(out, std::string_view(held_).substr(0, open), false);
    held_.erase(0, open);
    const std::size_t close = held_.find(kClose, kOpen.size());
    if (close == std::string::npos) {
      if (at_end) {  // unterminated: what was held is content after all
        emit_content(out, held_, true);
        held_.clear();
      }
      return out;
    }
    std::optional<ToolCall> call =
        parse_call(std::string_view(held_).substr(kOpen.size(), close - kOpen.size()));
    if (call) {
      out.calls.push_back(std::move(*call));
      ++num_calls_;
    } else {
      emit_content(out, std::string_view(held_).substr(0, close + kClose.size()), false);
    }
    held_.erase(0, close + kClose.size());
  }
}

ParsedToolCalls ToolCallStream::feed(std::string_view text) {
  switch (format_) {
    case ToolCallFormat::none:
      return {std::string(text), {}};
    case ToolCallFormat::hermes:
      held_ += text;
      return scan_hermes(false);
    case ToolCallFormat::llama3_json:
      break;
  }
  if (llama_decided_) return {std::string(text), {}};
  held_ += text;
  const std::string_view start = trim(held_);
  if (start.empty() || start.starts_with('{') || start.starts_with(kPythonTag) ||
      kPythonTag.starts_with(start)) {
    return {};  // may be a call: hold until the end of the output
  }
  llama_decided_ = true;
  return {std::exchange(held_, {}), {}};
}

ParsedToolCalls ToolCallStream::finish() {
  switch (format_) {
    case ToolCallFormat::none:
      return {};
    case ToolCallFormat::hermes: {
      ParsedToolCalls out = scan_hermes(true);
      if (num_calls_ == 0) out.content += std::exchange(whitespace_, {});
      return out;
    }
    case ToolCallFormat::llama3_json:
      break;
  }
  if (llama_decided_ || held_.empty()) return {};
  ParsedToolCalls out = parse_llama3(held_);
  held_.clear();
  num_calls_ += int(out.calls.size());
  return out;
}

}  // namespace pagedserve
