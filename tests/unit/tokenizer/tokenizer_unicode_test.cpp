// The tokenizer's Unicode helpers: lossy UTF-8 repair (fed whole or byte by byte), the GPT-2
// byte-level alphabet, and NFC.
#include <gtest/gtest.h>

#include <iostream>
#include <random>
#include <string>

#include "tokenizer/unicode_nfc.h"
#include "tokenizer/unicode_utf8.h"

namespace pagedserve {
namespace {

const std::string kFffd = "\xEF\xBF\xBD";

std::string lossy(std::string_view bytes) {
  std::string out;
  append_utf8_lossy(bytes, out, true);
  return out;
}

TEST(TokenizerUnicodeTest, LossyRepairReplacesMaximalSubparts) {
  EXPECT_EQ(lossy("plain"), "plain");
  EXPECT_EQ(lossy("\xC3\xA9"), "\xC3\xA9");
  EXPECT_EQ(lossy("\xFF"), kFffd);
  EXPECT_EQ(lossy("\x80\x80"), kFffd + kFffd);                          // lone continuations: one each
  EXPECT_EQ(lossy("\xF0\x9F\x98"), kFffd);                              // truncated: one for the subpart
  EXPECT_EQ(lossy("\xF0\x9F\x41"), kFffd + "A");                        // broken, then ASCII
  EXPECT_EQ(lossy("\xE0\x80\x80"), kFffd + kFffd + kFffd);              // overlong: E0 needs A0..BF next
  EXPECT_EQ(lossy("\xED\xA0\x80"), kFffd + kFffd + kFffd);              // surrogate
  EXPECT_EQ(lossy("\xF4\x90\x80\x80"), kFffd + kFffd + kFffd + kFffd);  // above U+10FFFF
  EXPECT_EQ(lossy("\xC0\xAF"), kFffd + kFffd);                          // overlong two-byte lead
}

TEST(TokenizerUnicodeTest, LossyRepairInPiecesEqualsWhole) {
  const std::uint64_t seed = std::random_device{}();
  std::cout << "seed " << seed << "\n";
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng(seed);
  const std::string alphabet = "a\x80\xBF\xC2\xC3\xA9\xE0\xA0\xED\x9F\xF0\x90\x9F\x98\xF4\x8F\xFF";
  for (int round = 0; round < 2000; ++round) {
    std::string bytes;
    for (int n = static_cast<int>(rng() % 12); n > 0; --n) bytes.push_back(alphabet[rng() % alphabet.size()]);
    // Feed it byte by byte, keeping the unconsumed tail as IncrementalDecoder does.
    std::string pieces, pending;
    for (const char c : bytes) {
      pending.push_back(c);
      std::string text;
      pending.erase(0, append_utf8_lossy(pending, text, false));
      ASSERT_TRUE(is_valid_utf8(text));
      pieces += text;
    }
    append_utf8_lossy(pending, pieces, true);
    ASSERT_EQ(pieces, lossy(bytes));
    ASSERT_TRUE(is_valid_utf8(pieces));
    ASSERT_EQ(is_valid_utf8(bytes), pieces == bytes);
  }
}

TEST(TokenizerUnicodeTest, ByteLevelAlphabetIsABijection) {
  const ByteLevelAlphabet& alphabet = ByteLevelAlphabet::instance();
  EXPECT_EQ(alphabet.encode(' '), "\xC4\xA0");   // Ġ
  EXPECT_EQ(alphabet.encode('\n'), "\xC4\x8A");  // Ċ
  EXPECT_EQ(alphabet.encode('a'), "a");
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
  std::string encoded, decoded;
  alphabet.encode_all(all, encoded);
  EXPECT_TRUE(is_valid_utf8(encoded));
  alphabet.decode_all(encoded, decoded);
  EXPECT_EQ(decoded, all);
}

TEST(TokenizerUnicodeTest, Nfc) {
  EXPECT_EQ(nfc_normalize("abc"), "abc");
  EXPECT_EQ(nfc_normalize("e\xCC\x81"), "\xC3\xA9");                                 // e + acute -> é
  EXPECT_EQ(nfc_normalize("\xE1\x84\x92\xE1\x85\xA1\xE1\x86\xAB"), "\xED\x95\x9C");  // jamo -> 한
  EXPECT_EQ(nfc_normalize("a\xCC\xA7\xCC\x88"), "\xC3\xA4\xCC\xA7");  // a cedilla diaeresis -> ä + cedilla
  EXPECT_EQ(nfc_normalize("\xE2\x84\xAB"), "\xC3\x85");               // Ångström sign -> Å
  EXPECT_EQ(nfc_normalize("q\xCC\x83"), "q\xCC\x83");                 // no precomposed q̃
  EXPECT_EQ(nfc_normalize("\xE6\x97\xA5\xE6\x9C\xAC"), "\xE6\x97\xA5\xE6\x9C\xAC");  // CJK unchanged
  EXPECT_EQ(nfc_normalize("\xEF\xA4\x80"), "\xE8\xB1\x88");  // CJK compatibility U+F900
}

}  // namespace
}  // namespace pagedserve
