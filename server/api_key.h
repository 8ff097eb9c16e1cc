// Checking a request's `Authorization` header against `--api-key` in constant time: the time the
// check takes depends on the key's length only, never on how many leading bytes of a guess are
// right, so that timing replies cannot recover the key byte by byte.
//
// Threads: a pure function; any thread.
#pragma once

#include <string_view>

namespace pagedserve {

// True when `api_key` is empty (no authentication) or `authorization` is exactly
// "Bearer " + api_key.
bool authorization_matches(std::string_view authorization, std::string_view api_key);

}  // namespace pagedserve
