#include "scheduler/stop_checker.h"

#include <algorithm>
#include <utility>

namespace pagedserve {

StopStringChecker::StopStringChecker(std::vector<std::string> stop_strings) {
  for (std::string& stop : stop_strings) {
    if (!stop.empty()) stop_strings_.push_back(std::move(stop));
  }
}

StopStringChecker::Update StopStringChecker::push(std::string_view piece) {
  Update update;
  if (stopped_) return update;
  pending_.append(piece);

  std::size_t earliest = std::string::npos;
  for (const std::string& stop : stop_strings_) earliest = std::min(earliest, pending_.find(stop));
  if (earliest != std::string::npos) {
    update.text = pending_.substr(0, earliest);
    update.stopped = stopped_ = true;
    pending_.clear();
    return update;
  }

  // Hold back the longest tail that a later piece could complete into a stop string.
  const std::string_view text = pending_;
  std::size_t hold = 0;
  for (const std::string& stop : stop_strings_) {
    for (std::size_t length = std::min(stop.size() - 1, text.size()); length > hold; --length) {
      if (text.substr(text.size() - length) == std::string_view(stop).substr(0, length)) {
        hold = length;
        break;
      }
    }
  }
  update.text = pending_.substr(0, pending_.size() - hold);
  pending_.erase(0, pending_.size() - hold);
  return update;
}

std::string StopStringChecker::flush() {
  if (stopped_) return {};
  return std::exchange(pending_, {});
}

}  // namespace pagedserve
