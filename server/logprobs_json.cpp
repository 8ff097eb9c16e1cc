#include "server/logprobs_json.h"

#include <algorithm>
#include <cmath>
#include <string>

namespace pagedserve {

double finite_logprob(float logprob) {
  return std::isfinite(logprob) ? std::max(double(logprob), -9999.0) : -9999.0;
}

nlohmann::ordered_json prompt_logprobs_json(const PromptLogprobs& prompt_logprobs) {
  nlohmann::ordered_json list = nlohmann::ordered_json::array();
  for (const auto& position : prompt_logprobs) {
    if (!position) {
      list.push_back(nullptr);
      continue;
    }
    nlohmann::ordered_json entries = nlohmann::ordered_json::object();
    for (const PromptLogprobEntry& entry : *position) {
      entries[std::to_string(entry.token)] = {{"logprob", finite_logprob(entry.logprob)},
                                              {"rank", entry.rank},
                                              {"decoded_token", entry.decoded_token}};
    }
    list.push_back(std::move(entries));
  }
  return list;
}

}  // namespace pagedserve
