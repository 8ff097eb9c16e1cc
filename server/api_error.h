// A request-path error as a value (DESIGN.md §6): what the protocol layer and routes return instead
// of throwing. Serialised as OpenAI's body {"error": {"message", "type", "param", "code"}}.
// Plain data: any thread may build, copy or read one.
#pragma once

#include <string>

namespace pagedserve {

struct ApiError {
  int status = 400;     // HTTP status: 400, 401, 404, 405, 413, 429, 500, 503
  std::string message;  // for humans; names the offending values
  std::string type;     // OpenAI's error type, e.g. "invalid_request_error"
  std::string param;    // the offending field, empty when none (serialised as null)
  std::string code;     // machine-readable code, empty when none (serialised as null)

  static ApiError invalid_request(std::string message, std::string param = {}, std::string code = {});
  static ApiError unauthorized(std::string message);
  static ApiError not_found(std::string message);
  static ApiError method_not_allowed(std::string message);
  static ApiError body_too_large(std::string message);
  static ApiError too_many_requests(std::string message);
  static ApiError unavailable(std::string message);
  static ApiError internal(std::string message);
};

// {"error": {...}} as compact JSON text.
std::string error_body_json(const ApiError& error);

}  // namespace pagedserve
