// A blocking HTTP/1.1 client for one request per connection (Boost.Beast stays in the .cpp).
// Each call opens its own socket, so any number of threads may call at once.
#pragma once

#include <functional>
#include <string>
#include <string_view>

namespace pagedserve::bench {

struct HttpTarget {
  std::string host;
  int port = 0;
  std::string api_key;  // sent as Authorization: Bearer when non-empty
};

struct HttpReply {
  int status = 0;
  std::string body;
};

// GET path. Throws std::runtime_error when the server cannot be reached or hangs up.
HttpReply http_get(const HttpTarget& target, const std::string& path);

// POST a JSON body and hand every piece of a 2xx response body to on_body as soon as it is read
// off the socket (callers time-stamp there). A non-2xx answer is returned whole in body and
// on_body is not called. Throws std::runtime_error on a connection or protocol failure.
HttpReply http_post_streaming(const HttpTarget& target, const std::string& path, const std::string& json,
                              const std::function<void(std::string_view)>& on_body);

}  // namespace pagedserve::bench
