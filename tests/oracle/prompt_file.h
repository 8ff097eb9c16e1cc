// The oracle tools' prompt files: one prompt per line, token ids separated by spaces; empty lines
// are skipped. Throws SetupError when the file cannot be opened.
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"

namespace pagedserve {

inline std::vector<std::vector<std::int32_t>> read_prompt_file(const std::filesystem::path& path) {
  std::vector<std::vector<std::int32_t>> prompts;
  std::ifstream in(path);
  if (!in) throw SetupError(path.string(), "cannot open");
  for (std::string line; std::getline(in, line);) {
    std::istringstream words(line);
    std::vector<std::int32_t> ids;
    for (std::int32_t id; words >> id;) ids.push_back(id);
    if (!ids.empty()) prompts.push_back(ids);
  }
  return prompts;
}

}  // namespace pagedserve
