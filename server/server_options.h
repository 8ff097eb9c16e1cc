// HTTP-side settings of `pagedserve serve` (the engine's live in the engine adapter's config).
// Plain data, fixed before the server starts; read from any thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

namespace pagedserve {

struct ServerOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8000;  // 0 = any free port (tests)
  int http_threads = 4;
  std::string served_model_name;                // what /v1/models lists and requests may name
  std::string chat_template_file;               // replaces the model's chat template when set
  std::string api_key;                          // empty = no authentication
  bool api_key_for_health_and_metrics = false;  // /health and /metrics are open unless set
  std::size_t max_body_bytes = 4u << 20;
  std::size_t max_header_bytes = 16u << 10;
  std::chrono::seconds idle_timeout{60};      // waiting for a request's first byte (keep-alive)
  std::chrono::seconds read_timeout{30};      // one request, head and body, from its first byte
  std::chrono::seconds write_timeout{30};     // one response write or stream chunk
  std::chrono::seconds shutdown_timeout{30};  // SIGTERM: in-flight requests get this long, then abort
  int max_concurrent_requests = 0;            // completions in flight; over it = 429; 0 = unlimited
  int max_n = 16;
  int max_logprobs = 20;
  int max_prompts = 64;
};

}  // namespace pagedserve
