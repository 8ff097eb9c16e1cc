// The session's HTTP rules on Beast values, apart from its socket, so that the fuzzer
// (tests/fuzz/http_request_fuzz.cpp) runs the same code on bytes: the parser's limits, what a
// read error answers, the request as routes see it, and a reply as it goes on the wire.
// Includes Beast: include it from http_session.cpp and the fuzzer only (compile time).
//
// Threads: pure functions; any thread.
#pragma once

#include <boost/beast/core/error.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cstddef>
#include <optional>

#include "server/http_routes.h"
#include "server/server_options.h"

namespace pagedserve {

using HttpRequestParser = boost::beast::http::request_parser<boost::beast::http::string_body>;
using HttpRequestMessage = boost::beast::http::request<boost::beast::http::string_body>;
using HttpResponseMessage = boost::beast::http::response<boost::beast::http::string_body>;

// Body and header limits from the options (over them: 413 and 431 from read_error_reply).
void limit_request_parser(HttpRequestParser& parser, const ServerOptions& options);

// The whole head (request line and fields: the bytes the parser used for it) against the header
// limit: http::error::header_limit when over it, else no error. Beast checks its header_limit
// against the unparsed bytes of one parse call only, and the fields a call parsed are consumed,
// so a head arriving in pieces (or split by an earlier read) passed with up to twice the limit.
boost::beast::error_code check_head_size(std::size_t head_bytes, const ServerOptions& options);

// A failed read: the reply to send before closing, or nothing when the peer is gone or idle
// (end of stream, timeout, reset, cancelled) and the connection just closes.
std::optional<HttpReply> read_error_reply(boost::beast::error_code ec, const ServerOptions& options);

// Views into `request`, which must outlive the result.
HttpRequestView request_view(const HttpRequestMessage& request);

// `version` 0 (nothing parsed yet) answers HTTP/1.1.
HttpResponseMessage make_response(HttpReply reply, unsigned version, bool keep_alive);

}  // namespace pagedserve
