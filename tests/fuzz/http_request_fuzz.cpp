// Fuzzes what a connection sends, through the session's own rules (server/http_exchange.h): Beast's
// request parser with the server's limits, fed the bytes in pieces as reads deliver them; a read
// error answered as the session answers it; a parsed request routed by route_request against the
// real engine backend over models/tiny-qwen3 (tokenizer, chat template); each reply serialised as
// it goes on the wire. Keep-alive requests that follow in the same bytes are read in turn.
// Completions are routed but not submitted, so no engine step runs per input.
//
// Input: byte 0 picks how many bytes each read delivers; the rest is the connection's bytes.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/write.hpp>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string_view>
#include <variant>

#include "server/chat_format.h"
#include "server/engine_backend.h"
#include "server/http_exchange.h"
#include "server/server_metrics.h"
#include "server/server_state.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/fuzz/fuzz_files.h"

using namespace pagedserve;
namespace http = boost::beast::http;

namespace {

// Small limits so that 413 and 431 are within the fuzzer's input sizes.
ServerOptions fuzz_options() {
  ServerOptions options;
  options.served_model_name = "tiny-qwen3";
  options.api_key = "fuzz-key";
  options.max_body_bytes = 2048;
  options.max_header_bytes = 1024;
  return options;
}

struct Server {
  ServerMetrics metrics{"tiny-qwen3"};
  ServerState state{fuzz_options(), metrics};
  Server() {
    spdlog::set_level(spdlog::level::warn);
    EngineSettings settings;
    settings.model_dir = fuzz::source_path("models/tiny-qwen3");
    settings.threads = 1;
    settings.max_model_len = 512;
    settings.kv_cache_memory_bytes = 8u << 20;
    fuzz::read_source_file("models/tiny-qwen3/config.json");  // a clear message when it is absent
    state.set_backend(load_engine_backend(settings));
    state.set_chat_format(ChatFormat::load(settings.model_dir));
  }
};

void check_reply(HttpReply reply, unsigned version, bool keep_alive) {
  FUZZ_CHECK(reply.status >= 200 && reply.status < 600);
  if (reply.content_type == "application/json") {
    FUZZ_CHECK(!nlohmann::json::parse(reply.body, nullptr, false).is_discarded());
  }
  std::ostringstream wire;
  wire << make_response(std::move(reply), version, keep_alive);
  FUZZ_CHECK(!wire.str().empty());
}

void check_start(const CompletionStart& start, const CompletionBackend& backend) {
  FUZZ_CHECK(!start.prompt_ids.empty() && start.prompt_ids.size() == start.prompt_texts.size());
  for (const auto& ids : start.prompt_ids) {
    FUZZ_CHECK(!ids.empty() && int(ids.size()) + start.request.max_tokens <= backend.max_model_len());
    for (std::int32_t id : ids) FUZZ_CHECK(id >= 0 && id < backend.vocab_size());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static Server server;
  if (size == 0) return 0;
  const std::size_t read_size = 1 + data[0] % 64 * 8;  // 1 .. 505 bytes per read
  std::string_view bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::size_t consumed = 0;
  for (int exchange = 0; exchange < 4 && consumed < bytes.size(); ++exchange) {
    HttpRequestParser parser;
    limit_request_parser(parser, server.state.options());
    parser.eager(true);
    boost::beast::error_code ec;
    std::size_t arrived = consumed;
    while (!ec && !parser.is_done()) {
      if (arrived == bytes.size()) {  // the client closed its side
        parser.put_eof(ec);
        if (!ec && !parser.is_done()) ec = http::error::partial_message;
        break;
      }
      arrived = std::min(bytes.size(), arrived + read_size);
      consumed += parser.put(boost::asio::buffer(bytes.data() + consumed, arrived - consumed), ec);
      if (ec == http::error::need_more) ec = {};
    }
    if (ec) {
      if (std::optional<HttpReply> reply = read_error_reply(ec, server.state.options())) {
        check_reply(std::move(*reply), 11, false);
      }
      return 0;
    }
    const HttpRequestMessage& request = parser.get();
    RouteResult result = route_request(request_view(request), server.state);
    if (auto* reply = std::get_if<HttpReply>(&result)) {
      check_reply(std::move(*reply), request.version(), request.keep_alive());
    } else {
      check_start(std::get<CompletionStart>(result), *server.state.backend());
    }
    if (!request.keep_alive()) return 0;
  }
  return 0;
}
