// Logging: spdlog's default logger, to stderr, configured once per process (any thread may call
// init_logging; the first call wins). Library code logs through spdlog:: directly.
#pragma once

#include <string_view>

namespace pagedserve {

// level: trace, debug, info, warn, error, critical, off. Unknown names fall back to info.
void init_logging(std::string_view level = "info");

}  // namespace pagedserve
