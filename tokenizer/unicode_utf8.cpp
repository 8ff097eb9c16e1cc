#include "tokenizer/unicode_utf8.h"

namespace pagedserve {

int utf8_sequence_length(unsigned char lead) {
  if (lead < 0x80) return 1;
  if (lead < 0xC2) return 0;  // continuation byte or overlong two-byte lead
  if (lead < 0xE0) return 2;
  if (lead < 0xF0) return 3;
  if (lead < 0xF5) return 4;
  return 0;
}

void append_utf8(char32_t cp, std::string& out) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

namespace {

// How many bytes of text (1..4) form a valid prefix of a UTF-8 sequence: the maximal subpart.
// `complete` tells whether that prefix is a whole character.
std::size_t valid_subpart(std::string_view text, bool& complete) {
  const auto lead = static_cast<unsigned char>(text[0]);
  const int length = utf8_sequence_length(lead);
  complete = false;
  if (length == 0) return 0;
  if (length == 1) {
    complete = true;
    return 1;
  }
  // The second byte's range depends on the lead (no overlongs, no surrogates, <= U+10FFFF).
  unsigned char low = 0x80, high = 0xBF;
  if (lead == 0xE0) low = 0xA0;
  if (lead == 0xED) high = 0x9F;
  if (lead == 0xF0) low = 0x90;
  if (lead == 0xF4) high = 0x8F;
  std::size_t i = 1;
  for (; i < static_cast<std::size_t>(length) && i < text.size(); ++i) {
    const auto byte = static_cast<unsigned char>(text[i]);
    const bool ok = i == 1 ? (byte >= low && byte <= high) : (byte >= 0x80 && byte <= 0xBF);
    if (!ok) return i;
  }
  complete = i == static_cast<std::size_t>(length);
  return i;
}

}  // namespace

std::size_t valid_utf8_prefix_char(std::string_view text) {
  if (text.empty()) return 0;
  bool complete = false;
  const std::size_t n = valid_subpart(text, complete);
  return complete ? n : 0;
}

char32_t next_code_point(std::string_view text, std::size_t& pos) {
  const auto lead = static_cast<unsigned char>(text[pos]);
  const int length = utf8_sequence_length(lead);
  if (length <= 1) {
    ++pos;
    return lead;
  }
  char32_t cp = lead & (0x7F >> length);
  for (int i = 1; i < length; ++i) cp = (cp << 6) | (static_cast<unsigned char>(text[pos + i]) & 0x3F);
  pos += static_cast<std::size_t>(length);
  return cp;
}

std::size_t append_utf8_lossy(std::string_view bytes, std::string& out, bool final) {
  std::size_t pos = 0;
  while (pos < bytes.size()) {
    bool complete = false;
    const std::size_t n = valid_subpart(bytes.substr(pos), complete);
    if (complete) {
      out.append(bytes.substr(pos, n));
      pos += n;
    } else if (pos + n == bytes.size() && n > 0 && !final) {
      break;  // a character still arriving
    } else {
      out.append(kReplacementCharacter);
      pos += n == 0 ? 1 : n;
    }
  }
  return pos;
}

bool is_valid_utf8(std::string_view text) {
  std::size_t pos = 0;
  while (pos < text.size()) {
    // ASCII runs are by far the most common input; skip them a byte at a time cheaply.
    if (static_cast<unsigned char>(text[pos]) < 0x80) {
      ++pos;
      continue;
    }
    const std::size_t n = valid_utf8_prefix_char(text.substr(pos));
    if (n == 0) return false;
    pos += n;
  }
  return true;
}

ByteLevelAlphabet::ByteLevelAlphabet() {
  byte_of_code_point_.fill(-1);
  char32_t next_unprintable = 0x100;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
    const char32_t cp = printable ? static_cast<char32_t>(b) : next_unprintable++;
    append_utf8(cp, encoded_[b]);
    byte_of_code_point_[cp] = static_cast<std::int16_t>(b);
  }
}

const ByteLevelAlphabet& ByteLevelAlphabet::instance() {
  static const ByteLevelAlphabet alphabet;
  return alphabet;
}

void ByteLevelAlphabet::encode_all(std::string_view bytes, std::string& out) const {
  for (const char c : bytes) out.append(encoded_[static_cast<unsigned char>(c)]);
}

void ByteLevelAlphabet::decode_all(std::string_view text, std::string& out) const {
  std::size_t pos = 0;
  while (pos < text.size()) {
    const std::size_t start = pos;
    const char32_t cp = next_code_point(text, pos);
    const int byte = decode(cp);
    if (byte >= 0) {
      out.push_back(static_cast<char>(byte));
    } else {
      out.append(text.substr(start, pos - start));
    }
  }
}

}  // namespace pagedserve
