#include "server/api_key.h"

#include <cstddef>

namespace pagedserve {
namespace {

constexpr std::string_view kScheme = "Bearer ";

// Every byte of `secret` is visited whatever `given` holds: no early exit on the first
// difference (as == and memcmp have). The empty asm statement tells the compiler that the
// accumulated difference may have changed after each byte, so it cannot know the result before
// the loop ends, and cannot turn the loop back into one that stops at a mismatch.
bool equal_in_constant_time(std::string_view given, std::string_view secret) {
  unsigned difference = given.size() == secret.size() ? 0 : 1;
  for (std::size_t i = 0; i < secret.size(); ++i) {
    const unsigned char got = i < given.size() ? static_cast<unsigned char>(given[i]) : 0;
    difference |= got ^ static_cast<unsigned char>(secret[i]);
    __asm__ volatile("" : "+r"(difference));
  }
  return difference == 0;
}

}  // namespace

bool authorization_matches(std::string_view authorization, std::string_view api_key) {
  if (api_key.empty()) return true;
  // The scheme is public: comparing it normally leaks nothing about the key.
  const bool scheme_ok = authorization.substr(0, kScheme.size()) == kScheme;
  const std::string_view given = scheme_ok ? authorization.substr(kScheme.size()) : std::string_view();
  return equal_in_constant_time(given, api_key) && scheme_ok;
}

}  // namespace pagedserve
