#include "server/http_exchange.h"

#include <boost/asio/error.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/field.hpp>
#include <cstdint>
#include <string>
#include <string_view>

namespace pagedserve {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

std::string_view view(beast::string_view s) { return {s.data(), s.size()}; }

}  // namespace

void limit_request_parser(HttpRequestParser& parser, const ServerOptions& options) {
  parser.body_limit(options.max_body_bytes);
  parser.header_limit(static_cast<std::uint32_t>(options.max_header_bytes));
}

beast::error_code check_head_size(std::size_t head_bytes, const ServerOptions& options) {
  if (head_bytes > options.max_header_bytes) return http::error::header_limit;
  return {};
}

std::optional<HttpReply> read_error_reply(beast::error_code ec, const ServerOptions& options) {
  if (ec == http::error::body_limit) {
    return error_reply(ApiError::body_too_large("The request body is over the limit of " +
                                                std::to_string(options.max_body_bytes) + " bytes"));
  }
  if (ec == http::error::header_limit) {
    HttpReply reply = error_reply(ApiError::invalid_request("The request headers are over the limit of " +
                                                            std::to_string(options.max_header_bytes) + " bytes"));
    reply.status = 431;
    return reply;
  }
  if (ec == http::error::end_of_stream || ec == net::error::eof || ec == beast::error::timeout ||
      ec == net::error::operation_aborted || ec == net::error::connection_reset) {
    return std::nullopt;
  }
  return error_reply(ApiError::invalid_request("Malformed HTTP request: " + ec.message()));
}

HttpRequestView request_view(const HttpRequestMessage& request) {
  return HttpRequestView{view(request.method_string()), view(request.target()), request.body(),
                         view(request[http::field::authorization])};
}

HttpResponseMessage make_response(HttpReply reply, unsigned version, bool keep_alive) {
  HttpResponseMessage response(static_cast<http::status>(reply.status), version ? version : 11);
  response.set(http::field::server, "pagedserve");
  response.set(http::field::content_type, reply.content_type);
  for (auto& [name, value] : reply.headers) response.set(name, value);
  response.keep_alive(keep_alive);
  response.body() = std::move(reply.body);
  response.prepare_payload();
  return response;
}

}  // namespace pagedserve
