#include "bench/serve/sse_stream.h"

#include <nlohmann/json.hpp>

namespace pagedserve::bench {

std::vector<std::string> SseParser::feed(std::string_view bytes) {
  pending_.append(bytes);
  std::vector<std::string> events;
  size_t start = 0;
  for (;;) {
    const size_t end = pending_.find_first_of("\r\n", start);
    if (end == std::string::npos) break;
    // A "\r" at the very end may be the first half of "\r\n": wait for the next byte.
    if (pending_[end] == '\r' && end + 1 == pending_.size()) break;
    take_line(std::string_view(pending_).substr(start, end - start), events);
    start = end + ((pending_[end] == '\r' && pending_[end + 1] == '\n') ? 2 : 1);
  }
  pending_.erase(0, start);
  return events;
}

void SseParser::take_line(std::string_view line, std::vector<std::string>& events) {
  if (line.empty()) {  // a blank line ends the event
    if (has_data_) events.push_back(std::move(data_));
    data_.clear();
    has_data_ = false;
    return;
  }
  if (line.front() == ':') return;
  const size_t colon = line.find(':');
  const std::string_view field = line.substr(0, colon);
  std::string_view value = colon == std::string_view::npos ? std::string_view() : line.substr(colon + 1);
  if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  if (field != "data") return;
  if (has_data_) data_.push_back('\n');
  data_.append(value);
  has_data_ = true;
}

CompletionChunk parse_completion_chunk(std::string_view data) {
  CompletionChunk chunk;
  if (data == "[DONE]") {
    chunk.done = true;
    return chunk;
  }
  const nlohmann::json body = nlohmann::json::parse(data, nullptr, /*allow_exceptions=*/false);
  if (!body.is_object()) {
    chunk.error = "unreadable stream chunk: " + std::string(data.substr(0, 200));
    return chunk;
  }
  if (auto e = body.find("error"); e != body.end() && !e->is_null()) {
    const auto message = e->is_object() ? e->find("message") : e->end();
    chunk.error = message != e->end() && message->is_string() ? message->get<std::string>() : e->dump();
    return chunk;
  }
  if (auto choices = body.find("choices");
      choices != body.end() && choices->is_array() && !choices->empty()) {
    const nlohmann::json& first = choices->front();
    if (auto text = first.find("text"); text != first.end() && text->is_string()) {
      chunk.text = text->get<std::string>();
    } else if (auto delta = first.find("delta"); delta != first.end() && delta->is_object()) {
      if (auto content = delta->find("content"); content != delta->end() && content->is_string())
        chunk.text = content->get<std::string>();
    }
  }
  if (auto usage = body.find("usage"); usage != body.end() && usage->is_object()) {
    if (auto p = usage->find("prompt_tokens"); p != usage->end() && p->is_number_integer())
      chunk.prompt_tokens = p->get<int>();
    if (auto c = usage->find("completion_tokens"); c != usage->end() && c->is_number_integer())
      chunk.completion_tokens = c->get<int>();
  }
  return chunk;
}

}  // namespace pagedserve::bench
