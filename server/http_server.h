// The HTTP front end: an Asio io_context run by a few threads, a listener, and per-connection
// sessions. No Beast or Asio in this header (it is included by main and tests).
//
// Threads: construct, start(), wait_for_shutdown_signal() and shutdown() from one controlling
// thread (main). Requests are served on the server's own threads.
// Lifetime: destroy the engine behind the backend BEFORE this object, so that no engine callback
// posts into a destroyed io_context (main declares the server first).
#pragma once

#include <cstdint>
#include <memory>

#include "server/server_state.h"

namespace pagedserve {

class HttpServer {
 public:
  HttpServer(ServerOptions options, ServerMetrics& metrics);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds, listens and starts the threads; returns the bound port (useful with port 0).
  // Throws SetupError when the address cannot be bound. /health says 503 until set_backend().
  std::uint16_t start();

  void set_backend(std::shared_ptr<CompletionBackend> backend);
  ServerState& state();

  // Blocks until SIGTERM or SIGINT (or request_shutdown()).
  void wait_for_shutdown_signal();
  void request_shutdown();

  // Graceful: stop accepting, let in-flight completions finish within options.shutdown_timeout,
  // abort the rest and wait briefly for their streams to end, then stop the threads.
  void shutdown();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pagedserve
