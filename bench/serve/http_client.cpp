#include "bench/serve/http_client.h"

#include <cstdint>
#include <limits>
#include <stdexcept>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

namespace pagedserve::bench {
namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;

struct Connection {
  asio::io_context io;
  tcp::socket socket{io};
  boost::beast::flat_buffer buffer;

  explicit Connection(const HttpTarget& target) {
    tcp::resolver resolver(io);
    boost::system::error_code ec;
    const auto endpoints = resolver.resolve(target.host, std::to_string(target.port), ec);
    if (!ec) asio::connect(socket, endpoints, ec);
    if (ec)
      throw std::runtime_error("cannot connect to " + target.host + ":" + std::to_string(target.port) + ": " +
                               ec.message());
    socket.set_option(tcp::no_delay(true));
  }

  ~Connection() {
    boost::system::error_code ignored;
    socket.shutdown(tcp::socket::shutdown_both, ignored);
  }
};

http::request<http::string_body> make_request(http::verb verb, const HttpTarget& target,
                                              const std::string& path) {
  http::request<http::string_body> req{verb, path, 11};
  req.set(http::field::host, target.host + ":" + std::to_string(target.port));
  req.set(http::field::user_agent, "pagedserve-bench-serve");
  req.set(http::field::connection, "close");
  if (!target.api_key.empty()) req.set(http::field::authorization, "Bearer " + target.api_key);
  return req;
}

void fail(const char* what, const boost::system::error_code& ec) {
  throw std::runtime_error(std::string(what) + ": " + ec.message());
}

}  // namespace

HttpReply http_get(const HttpTarget& target, const std::string& path) {
  Connection c(target);
  boost::system::error_code ec;
  http::write(c.socket, make_request(http::verb::get, target, path), ec);
  if (ec) fail("sending the request", ec);
  http::response_parser<http::string_body> parser;
  parser.body_limit(64u << 20);
  http::read(c.socket, c.buffer, parser, ec);
  if (ec) fail("reading the response", ec);
  return {int(parser.get().result_int()), std::move(parser.get().body())};
}

HttpReply http_post_streaming(const HttpTarget& target, const std::string& path, const std::string& json,
                              const std::function<void(std::string_view)>& on_body) {
  Connection c(target);
  auto req = make_request(http::verb::post, target, path);
  req.set(http::field::content_type, "application/json");
  req.set(http::field::accept, "text/event-stream");
  req.body() = json;
  req.prepare_payload();
  boost::system::error_code ec;
  http::write(c.socket, req, ec);
  if (ec) fail("sending the request", ec);

  // buffer_body: the parser writes the body into our buffer and read_some returns after each
  // read from the socket, so pieces reach on_body as the server sends them, not at the end.
  http::response_parser<http::buffer_body> parser;
  // A finite limit: Boost 1.74 compares a Content-Length against an empty optional as exceeded.
  parser.body_limit(std::numeric_limits<std::uint64_t>::max());
  http::read_header(c.socket, c.buffer, parser, ec);
  if (ec) fail("reading the response header", ec);
  const int status = int(parser.get().result_int());
  const bool ok = status >= 200 && status < 300;
  HttpReply reply{status, {}};
  char piece[16384];
  while (!parser.is_done()) {
    parser.get().body().data = piece;
    parser.get().body().size = sizeof piece;
    http::read_some(c.socket, c.buffer, parser, ec);
    if (ec == http::error::need_buffer) ec = {};
    if (ec) fail("reading the response body", ec);
    const size_t got = sizeof piece - parser.get().body().size;
    if (got == 0) continue;
    if (ok) {
      on_body(std::string_view(piece, got));
    } else {
      reply.body.append(piece, got);
    }
  }
  return reply;
}

}  // namespace pagedserve::bench
