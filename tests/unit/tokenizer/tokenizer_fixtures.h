// Small hand-made tokenizer.json fixtures for the tokenizer tests: a byte-level BPE vocabulary
// over GPT-2's alphabet and a SentencePiece-style one with byte fallback.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "tokenizer/unicode_utf8.h"

namespace pagedserve::testing {

// Byte-level BPE: ids 0..255 are the bytes (in GPT-2's alphabet), then one id per merge result,
// in merge order. `merges` are pairs of alphabet strings ("Ġ" for a space).
inline nlohmann::json byte_level_tokenizer_json(
    const std::vector<std::pair<std::string, std::string>>& merges, bool merges_as_strings) {
  using nlohmann::json;
  json vocab = json::object();
  const ByteLevelAlphabet& alphabet = ByteLevelAlphabet::instance();
  for (int b = 0; b < 256; ++b) vocab[std::string(alphabet.encode(static_cast<unsigned char>(b)))] = b;
  json merge_list = json::array();
  int next_id = 256;
  for (const auto& [left, right] : merges) {
    if (!vocab.contains(left + right)) vocab[left + right] = next_id++;
    if (merges_as_strings) {
      merge_list.push_back(left + " " + right);
    } else {
      merge_list.push_back(json::array({left, right}));
    }
  }
  return json{
      {"version", "1.0"},
      {"added_tokens", json::array({json{{"id", next_id}, {"content", "<|end|>"}, {"special", true}},
                                    json{{"id", next_id + 1}, {"content", "<tool>"}, {"special", false}}})},
      {"normalizer", nullptr},
      {"pre_tokenizer",
       json{{"type", "Sequence"},
            {"pretokenizers",
             json::array(
                 {json{{"type", "Split"},
                       {"pattern", {{"Regex", R"( ?\p{L}+| ?\p{N}| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)"}}},
                       {"behavior", "Isolated"},
                       {"invert", false}},
                  json{{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}})}}},
      {"post_processor", nullptr},
      {"decoder", json{{"type", "ByteLevel"}}},
      {"model", json{{"type", "BPE"}, {"vocab", vocab}, {"merges", merge_list}, {"ignore_merges", false}}}};
}

// SentencePiece-style BPE: <unk>, <s>, </s>, the 256 <0xXX> byte tokens, then `pieces` in order.
// Merges as given. With `legacy_metaspace` the prefix space comes from a Metaspace pre-tokenizer
// (older Llama/Mistral files); otherwise from a Prepend + Replace normaliser (newer files).
inline nlohmann::json sentencepiece_tokenizer_json(
    const std::vector<std::string>& pieces, const std::vector<std::pair<std::string, std::string>>& merges,
    bool legacy_metaspace) {
  using nlohmann::json;
  json vocab = json::object();
  vocab["<unk>"] = 0;
  vocab["<s>"] = 1;
  vocab["</s>"] = 2;
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    vocab[name] = 3 + b;
  }
  int next_id = 259;
  for (const auto& piece : pieces) vocab[piece] = next_id++;
  json merge_list = json::array();
  for (const auto& [left, right] : merges) merge_list.push_back(json::array({left, right}));
  const std::string space = "\xE2\x96\x81";
  json tokenizer{{"version", "1.0"},
                 {"added_tokens", json::array({json{{"id", 0}, {"content", "<unk>"}, {"special", true}},
                                               json{{"id", 1}, {"content", "<s>"}, {"special", true}},
                                               json{{"id", 2}, {"content", "</s>"}, {"special", true}}})},
                 {"post_processor", nullptr},
                 {"model", json{{"type", "BPE"},
                                {"vocab", vocab},
                                {"merges", merge_list},
                                {"unk_token", "<unk>"},
                                {"fuse_unk", true},
                                {"byte_fallback", true}}}};
  if (legacy_metaspace) {
    tokenizer["normalizer"] = nullptr;
    tokenizer["pre_tokenizer"] =
        json{{"type", "Metaspace"}, {"replacement", space}, {"prepend_scheme", "first"}, {"split", false}};
    tokenizer["decoder"] =
        json{{"type", "Sequence"},
             {"decoders",
              json::array({json{{"type", "Metaspace"}, {"replacement", space}, {"prepend_scheme", "first"}},
                           json{{"type", "ByteFallback"}}, json{{"type", "Fuse"}}})}};
  } else {
    tokenizer["normalizer"] =
        json{{"type", "Sequence"},
             {"normalizers",
              json::array({json{{"type", "Prepend"}, {"prepend", space}},
                           json{{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", space}}})}};
    tokenizer["pre_tokenizer"] = nullptr;
    tokenizer["decoder"] =
        json{{"type", "Sequence"},
             {"decoders",
              json::array({json{{"type", "Replace"}, {"pattern", {{"String", space}}}, {"content", " "}},
                           json{{"type", "ByteFallback"}}, json{{"type", "Fuse"}},
                           json{{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}})}};
  }
  return tokenizer;
}

}  // namespace pagedserve::testing
