#include "core/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <mutex>
#include <string>

namespace pagedserve {

void init_logging(std::string_view level) {
  static std::once_flag once;
  std::call_once(once, [level] {
    auto logger = spdlog::stderr_color_mt("pagedserve");
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
    spdlog::set_default_logger(logger);
    const auto parsed = spdlog::level::from_str(std::string(level));
    spdlog::set_level(parsed == spdlog::level::off && level != "off" ? spdlog::level::info : parsed);
  });
}

}  // namespace pagedserve
