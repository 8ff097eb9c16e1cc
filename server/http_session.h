// One HTTP/1.1 connection (Boost.Beast). Internal to server/: only the listener includes this.
// Threads: everything runs on the connection's strand (the socket's executor).
#pragma once

#include <boost/asio/ip/tcp.hpp>

#include "server/server_state.h"

namespace pagedserve {

// Takes the accepted socket (whose executor must be a strand) and serves requests on it until the
// peer closes, a timeout fires or the server stops. The session keeps itself alive.
void start_http_session(boost::asio::ip::tcp::socket socket, ServerState& state);

}  // namespace pagedserve
