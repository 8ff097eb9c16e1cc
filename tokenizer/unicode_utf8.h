// UTF-8 helpers for the tokenizer: code point iteration, validation with replacement, and the
// GPT-2 byte-level alphabet. Pure functions; any thread may call them.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace pagedserve {

inline constexpr std::string_view kReplacementCharacter = "\xEF\xBF\xBD";  // U+FFFD

// Number of bytes in the UTF-8 sequence that starts with `lead`; 0 when `lead` cannot start one.
int utf8_sequence_length(unsigned char lead);

// Appends the UTF-8 encoding of `code_point` (U+0000..U+10FFFF) to `out`.
void append_utf8(char32_t code_point, std::string& out);

// Length of the valid UTF-8 sequence at the start of `text`, or 0 when `text` starts with an
// invalid or truncated one (or is empty).
std::size_t valid_utf8_prefix_char(std::string_view text);

// Decodes the (valid) UTF-8 character at text[pos] and advances pos past it. The caller has
// validated `text`.
char32_t next_code_point(std::string_view text, std::size_t& pos);

// Appends `bytes` to `out` as valid UTF-8, each maximal invalid subpart replaced by U+FFFD (the
// WHATWG / Unicode "maximal subpart" rule, which Rust's from_utf8_lossy and Python's
// errors="replace" also follow). When `final` is false, a truncated sequence at the end is left
// unconsumed, so that feeding a byte stream in pieces gives exactly the text of feeding it whole.
// Returns the number of bytes consumed.
std::size_t append_utf8_lossy(std::string_view bytes, std::string& out, bool final);

// True when `text` is valid UTF-8.
bool is_valid_utf8(std::string_view text);

// GPT-2's byte-level alphabet: every byte maps to one printable code point (printable Latin-1
// bytes to themselves, the rest to U+0100 and up) so that BPE vocabularies never contain raw
// control or partial UTF-8 bytes.
class ByteLevelAlphabet {
 public:
  static const ByteLevelAlphabet& instance();

  // The UTF-8 encoding of the code point standing for `byte`.
  std::string_view encode(unsigned char byte) const { return encoded_[byte]; }
  // The byte a code point stands for, or -1 when it is not in the alphabet.
  int decode(char32_t code_point) const {
    return code_point < byte_of_code_point_.size() ? byte_of_code_point_[code_point] : -1;
  }

  // Maps every byte of `bytes` into the alphabet, appending to `out`.
  void encode_all(std::string_view bytes, std::string& out) const;
  // Maps alphabet characters back to bytes; characters outside the alphabet are kept as they
  // are (added tokens are written that way). `text` must be valid UTF-8.
  void decode_all(std::string_view text, std::string& out) const;

 private:
  ByteLevelAlphabet();
  std::array<std::string, 256> encoded_;
  std::array<std::int16_t, 324> byte_of_code_point_;  // every alphabet code point is < 324
};

}  // namespace pagedserve
