// Reads a tokenizer.json quickly: the vocabulary and merges (hundreds of thousands of entries)
// are collected straight into vectors by a SAX handler instead of being built as a JSON tree;
// everything else becomes an nlohmann::json tree, where model.vocab is {} and model.merges [].
// Internal to the tokenizer files; any thread may call it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace pagedserve {

struct TokenizerJsonDocument {
  nlohmann::json root;
  std::vector<std::pair<std::string, std::int32_t>> vocab;  // model.vocab, in file order
  std::vector<std::pair<std::string, std::string>> merges;  // model.merges, either spelling
};

// Reads a whole file into memory; throws SetupError naming `path` when it cannot.
std::string read_text_file(const std::filesystem::path& path);

// Throws SetupError naming the file (and the field for a malformed vocab or merge entry).
TokenizerJsonDocument read_tokenizer_json(const std::filesystem::path& path);

}  // namespace pagedserve
