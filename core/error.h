// Errors for setup failures (bad config, missing weights, device problems). Thrown by library
// code, caught once in main(), which logs `what()` and exits non-zero. The request path never
// throws these: "no room" and "invalid request" are values there (DESIGN.md §6).
#pragma once

#include <stdexcept>
#include <string>

namespace pagedserve {

class SetupError : public std::runtime_error {
 public:
  // `subject` names what failed (a file, a field, a device); `reason` says how.
  SetupError(const std::string& subject, const std::string& reason)
      : std::runtime_error(subject + ": " + reason), subject_(subject) {}

  const std::string& subject() const noexcept { return subject_; }

 private:
  std::string subject_;
};

}  // namespace pagedserve
