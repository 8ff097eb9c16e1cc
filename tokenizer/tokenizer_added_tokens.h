// Added tokens (special or not) of a tokenizer: found in the input before normalisation and
// pre-tokenization, so that "<|im_start|>" is one token and never BPE-encoded.
// Immutable after construction; any thread may call the const methods concurrently.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace pagedserve {

struct AddedToken {
  std::string content;
  std::int32_t id = 0;
  bool special = false;
  bool lstrip = false;  // swallows whitespace before it
  bool rstrip = false;  // swallows whitespace after it
};

// A piece of input text: either plain text to encode, or one added token.
struct TextSegment {
  std::string_view text;
  std::optional<std::int32_t> added_id;
  std::size_t offset = 0;  // where it starts in the input
};

class AddedTokens {
 public:
  AddedTokens() = default;
  explicit AddedTokens(std::vector<AddedToken> tokens);

  // Splits `text` around added tokens, leftmost first, the longest where several match.
  std::vector<TextSegment> split(std::string_view text) const;

  const AddedToken* find_by_id(std::int32_t id) const;
  std::optional<std::int32_t> find_by_content(std::string_view content) const;
  const std::vector<AddedToken>& tokens() const { return tokens_; }

 private:
  std::vector<AddedToken> tokens_;
  // Candidates by first byte, longest first: most text bytes have none and cost one lookup.
  std::vector<std::vector<std::size_t>> by_first_byte_;  // [256]
  std::unordered_map<std::int32_t, std::size_t> by_id_;
  std::unordered_map<std::string, std::int32_t> by_content_;
};

}  // namespace pagedserve
