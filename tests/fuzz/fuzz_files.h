// Reading the fixed inputs a fuzz target loads once at start-up (templates, tokenizers, models)
// from the source tree. A missing file stops the target with its path: run scripts/prepare-test-data.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

namespace pagedserve::fuzz {

inline std::string source_path(const std::string& relative) {
  return std::string(PAGEDSERVE_SOURCE_DIR) + "/" + relative;
}

inline std::string read_source_file(const std::string& relative) {
  std::ifstream in(source_path(relative), std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "fuzz: cannot read %s (run scripts/prepare-test-data)\n", source_path(relative).c_str());
    std::exit(2);
  }
  std::ostringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

}  // namespace pagedserve::fuzz
