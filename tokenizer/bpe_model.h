// The BPE model of a Hugging Face tokenizer.json: vocabulary, ranked merges, and what to do with
// characters the vocabulary lacks (byte fallback to <0xXX> tokens, or an unknown token).
// Immutable after construction; any thread may call the const methods concurrently.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "tokenizer/bpe_merge_table.h"

namespace pagedserve {

struct BpeModelOptions {
  bool byte_fallback = false;                // unknown characters become <0xXX> byte tokens
  bool ignore_merges = false;                // a word that is itself in the vocabulary is emitted whole
  bool fuse_unknown = false;                 // consecutive unknown characters give one unknown token
  std::optional<std::string> unknown_token;  // emitted for characters with no other encoding
};

class BpeModel {
 public:
  // vocab: (token, id) pairs; merges: ranked pairs, earlier merges first. Throws SetupError
  // naming `source` when a merge names a token missing from the vocabulary or the unknown token
  // is not in it.
  BpeModel(std::vector<std::pair<std::string, std::int32_t>> vocab,
           const std::vector<std::pair<std::string, std::string>>& merges, BpeModelOptions options,
           const std::string& source);

  // Appends the ids of one pre-tokenized word (already in the vocabulary's alphabet) to `out`.
  void encode_word(std::string_view word, std::vector<std::int32_t>& out) const;

  std::optional<std::int32_t> token_to_id(std::string_view token) const;
  // The vocabulary string of `id`; nullptr when the model has no such id.
  const std::string* id_to_token(std::int32_t id) const;
  // One past the largest id in the vocabulary.
  std::int32_t id_limit() const { return static_cast<std::int32_t>(tokens_by_id_.size()); }
  // The byte a <0xXX> token stands for, or -1 (only with byte fallback).
  int fallback_byte(std::int32_t id) const;

 private:
  // The id of a single character (its UTF-8 bytes), or nullopt.
  std::optional<std::int32_t> character_id(std::string_view character) const;
  void append_unknown(std::string_view character, std::vector<std::int32_t>& symbols,
                      bool& previous_unknown) const;

  BpeModelOptions options_;
  std::vector<std::string> tokens_by_id_;                   // "" for ids the vocabulary skips
  std::unordered_map<std::string_view, std::int32_t> ids_;  // views into tokens_by_id_
  BpeMergeTable merges_;
  // Ids of the characters below U+0800 (-1: not in the vocabulary), which covers GPT-2's whole
  // byte-level alphabet: the initial symbols of a word cost an array read, not a hash lookup.
  std::vector<std::int32_t> small_character_ids_;  // [0x800]
  std::vector<std::int32_t> byte_token_ids_;       // [256], -1 where <0xXX> is missing
  std::optional<std::int32_t> unknown_id_;
};

}  // namespace pagedserve
