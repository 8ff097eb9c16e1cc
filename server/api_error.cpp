#include "server/api_error.h"

#include <nlohmann/json.hpp>
#include <utility>

namespace pagedserve {
namespace {

ApiError make(int status, std::string type, std::string message, std::string param = {},
              std::string code = {}) {
  return ApiError{status, std::move(message), std::move(type), std::move(param), std::move(code)};
}

nlohmann::json string_or_null(const std::string& s) {
  return s.empty() ? nlohmann::json(nullptr) : nlohmann::json(s);
}

}  // namespace

ApiError ApiError::invalid_request(std::string message, std::string param, std::string code) {
  return make(400, "invalid_request_error", std::move(message), std::move(param), std::move(code));
}
ApiError ApiError::unauthorized(std::string message) {
  return make(401, "authentication_error", std::move(message), {}, "invalid_api_key");
}
ApiError ApiError::not_found(std::string message) { return make(404, "not_found_error", std::move(message)); }
ApiError ApiError::method_not_allowed(std::string message) {
  return make(405, "invalid_request_error", std::move(message), {}, "method_not_allowed");
}
ApiError ApiError::body_too_large(std::string message) {
  return make(413, "invalid_request_error", std::move(message), {}, "request_too_large");
}
ApiError ApiError::too_many_requests(std::string message) {
  return make(429, "rate_limit_error", std::move(message));
}
ApiError ApiError::unavailable(std::string message) {
  return make(503, "service_unavailable_error", std::move(message));
}
ApiError ApiError::internal(std::string message) {
  return make(500, "internal_server_error", std::move(message));
}

std::string error_body_json(const ApiError& error) {
  nlohmann::json body = {{"error",
                          {{"message", error.message},
                           {"type", error.type},
                           {"param", string_or_null(error.param)},
                           {"code", string_or_null(error.code)}}}};
  return body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace pagedserve
