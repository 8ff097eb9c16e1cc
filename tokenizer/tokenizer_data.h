// The tables behind a Tokenizer, built once by load_tokenizer_data() from tokenizer.json and
// tokenizer_config.json, then shared read-only by Tokenizer copies and IncrementalDecoders.
// Internal to the tokenizer files.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/bpe_model.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/tokenizer_added_tokens.h"
#include "tokenizer/tokenizer_normalizer.h"

namespace pagedserve {

struct TokenizerData {
  Normalizer normalizer;
  PreTokenizer pre_tokenizer;
  std::unique_ptr<BpeModel> model;
  AddedTokens added_tokens;

  // What encode(text, add_special_tokens=true) puts around the text.
  std::vector<std::int32_t> prefix_ids;
  std::vector<std::int32_t> suffix_ids;
  std::optional<std::int32_t> bos_id;
  std::optional<std::int32_t> eos_id;

  std::int32_t vocab_size = 0;
  // Per id: the bytes the decoder produces for it on its own (byte-level or "▁" mapped back,
  // <0xXX> resolved), and whether it is a special token.
  std::vector<std::string> token_bytes;  // [vocab_size]
  std::vector<std::uint8_t> special;     // [vocab_size]
  // Leading spaces the decoder strips from the start of the decoded text (SentencePiece's prefix).
  int strip_leading_spaces = 0;
};

std::shared_ptr<const TokenizerData> load_tokenizer_data(const std::filesystem::path& tokenizer_json,
                                                         const std::filesystem::path& config_path);

}  // namespace pagedserve
