// SentencePiece-style BPE (Llama-2, Mistral) on a hand-made vocabulary: the "▁" prefix space from
// a Prepend/Replace normaliser or a Metaspace pre-tokenizer, byte fallback, the decoder's
// leading-space strip, and incremental decoding across byte-fallback characters.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode_utf8.h"
#include "tests/unit/tokenizer/tokenizer_fixtures.h"
#include "tests/unit/tokenizer/tokenizer_test_util.h"

namespace pagedserve {
namespace {

using testing::sentencepiece_tokenizer_json;
using testing::TempDir;

const std::string kSpace = "\xE2\x96\x81";  // ▁

nlohmann::json fixture(bool legacy_metaspace) {
  const std::vector<std::string> pieces = {kSpace,
                                           "h",
                                           "i",
                                           "t",
                                           "e",
                                           "r",
                                           kSpace + "h",
                                           kSpace + "hi",
                                           kSpace + "t",
                                           kSpace + "th",
                                           kSpace + "the",
                                           kSpace + "ther",
                                           kSpace + "there",
                                           kSpace + kSpace};
  const std::vector<std::pair<std::string, std::string>> merges = {
      {kSpace, "h"},        {kSpace + "h", "i"},   {kSpace, "t"},          {kSpace + "t", "h"},
      {kSpace + "th", "e"}, {kSpace + "the", "r"}, {kSpace + "ther", "e"}, {kSpace, kSpace}};
  return sentencepiece_tokenizer_json(pieces, merges, legacy_metaspace);
}

class TokenizerSentencePieceTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    dir_.write("tokenizer.json", fixture(GetParam()).dump());
    dir_.write("tokenizer_config.json",
               R"({"bos_token": "<s>", "eos_token": "</s>", "add_bos_token": true})");
    tokenizer_ = std::make_unique<Tokenizer>(Tokenizer::load(dir_.path()));
  }
  std::int32_t id(const std::string& token) const { return tokenizer_->token_to_id(token).value_or(-1); }

  TempDir dir_;
  std::unique_ptr<Tokenizer> tokenizer_;
};

TEST_P(TokenizerSentencePieceTest, PrefixSpaceAndMerges) {
  const Tokenizer& t = *tokenizer_;
  const std::vector<std::int32_t> expected = {id(kSpace + "hi"), id(kSpace + "there")};
  EXPECT_EQ(t.encode("hi there", false), expected);
  EXPECT_EQ(t.decode(expected, false), "hi there");
  const auto leading = t.encode(" hi", false);
  if (GetParam()) {
    // Metaspace prepends only when the text does not already start with a space, so the
    // leading space is lost on the way back, exactly as in Hugging Face's implementation.
    EXPECT_EQ(leading, std::vector<std::int32_t>{id(kSpace + "hi")});
    EXPECT_EQ(t.decode(leading, false), "hi");
  } else {
    // "▁▁hi": the merge "▁ h" ranks before "▁ ▁".
    EXPECT_EQ(leading, (std::vector<std::int32_t>{id(kSpace), id(kSpace + "hi")}));
    EXPECT_EQ(t.decode(leading, false), " hi");
  }
  EXPECT_TRUE(t.encode("", false).empty());
}

TEST_P(TokenizerSentencePieceTest, ByteFallbackForUnknownCharacters) {
  const Tokenizer& t = *tokenizer_;
  // "é" is C3 A9; "😀" is F0 9F 98 80.
  const std::vector<std::int32_t> expected = {id(kSpace + "hi"), id("<0xC3>"), id("<0xA9>"), id(kSpace + "t"),
                                              id("<0xF0>"),      id("<0x9F>"), id("<0x98>"), id("<0x80>")};
  EXPECT_EQ(t.encode("hié t\xF0\x9F\x98\x80", false), expected);
  EXPECT_EQ(t.decode(expected, false), "hié t\xF0\x9F\x98\x80");
}

TEST_P(TokenizerSentencePieceTest, BosFromConfigAndSkippedOnDecode) {
  const Tokenizer& t = *tokenizer_;
  EXPECT_EQ(t.bos_id(), 1);
  EXPECT_EQ(t.eos_ids(), std::vector<std::int32_t>{2});
  const auto ids = t.encode("hi", true);
  ASSERT_EQ(ids.size(), 2u);
  EXPECT_EQ(ids[0], 1);
  EXPECT_EQ(t.decode(ids, true), "hi");
  EXPECT_EQ(t.decode(ids, false), "<s> hi");  // as Hugging Face: the strip only acts on a leading space
  const std::vector<std::int32_t> with_eos = {1, id(kSpace + "hi"), 2};
  EXPECT_EQ(t.decode(with_eos, true), "hi");
}

TEST_P(TokenizerSentencePieceTest, IncrementalDecodingStripsOnlyTheFirstSpace) {
  const Tokenizer& t = *tokenizer_;
  IncrementalDecoder decoder(t);
  EXPECT_EQ(decoder.push(1), "");  // <s>, skipped
  EXPECT_EQ(decoder.push(id(kSpace + "hi")), "hi");
  EXPECT_EQ(decoder.push(id(kSpace + "there")), " there");
  EXPECT_EQ(decoder.push(id(kSpace)), " ");
  EXPECT_EQ(decoder.flush(), "");
}

TEST_P(TokenizerSentencePieceTest, IncrementalDecodingHoldsBackSplitCharacters) {
  const Tokenizer& t = *tokenizer_;
  const auto ids = t.encode("t\xF0\x9F\x98\x80!", false);
  IncrementalDecoder decoder(t);
  std::vector<std::string> pieces;
  for (const auto i : ids) pieces.push_back(decoder.push(i));
  pieces.push_back(decoder.flush());
  // "▁t", then the emoji's four byte tokens: nothing until the last one completes it.
  ASSERT_GE(pieces.size(), 6u);
  EXPECT_EQ(pieces[0], "t");
  EXPECT_EQ(pieces[1], "");
  EXPECT_EQ(pieces[2], "");
  EXPECT_EQ(pieces[3], "");
  EXPECT_EQ(pieces[4], "\xF0\x9F\x98\x80");
  std::string joined;
  for (const auto& p : pieces) joined += p;
  EXPECT_EQ(joined, t.decode(ids, true));
}

TEST_P(TokenizerSentencePieceTest, IncompleteBytesFlushAsReplacementCharacter) {
  const Tokenizer& t = *tokenizer_;
  IncrementalDecoder decoder(t);
  EXPECT_EQ(decoder.push(id("<0xF0>")), "");
  EXPECT_EQ(decoder.push(id("<0x9F>")), "");
  EXPECT_EQ(decoder.push(id("<0x41>")),
            "\xEF\xBF\xBD"
            "A");  // broken sequence, then "A"
  EXPECT_EQ(decoder.push(id("<0xC3>")), "");
  EXPECT_EQ(decoder.flush(), "\xEF\xBF\xBD");
  const std::vector<std::int32_t> ids = {id("<0xF0>"), id("<0x9F>"), id("<0x41>"), id("<0xC3>")};
  EXPECT_EQ(t.decode(ids, false),
            "\xEF\xBF\xBD"
            "A\xEF\xBF\xBD");
}

INSTANTIATE_TEST_SUITE_P(Normalizers, TokenizerSentencePieceTest, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "LegacyMetaspace" : "PrependReplace"; });

// The two spellings differ after an added token: Prepend normalises every segment, Metaspace's
// "first" scheme only the start of the text.
TEST(TokenizerSentencePieceSchemesTest, PrefixAfterAddedToken) {
  TempDir a, b;
  a.write("tokenizer.json", fixture(false).dump());
  b.write("tokenizer.json", fixture(true).dump());
  const Tokenizer prepend = Tokenizer::load(a.path());
  const Tokenizer first = Tokenizer::load(b.path());
  const auto hi = *prepend.token_to_id(kSpace + "hi");
  EXPECT_EQ(prepend.encode("</s>hi", false), (std::vector<std::int32_t>{2, hi}));
  EXPECT_EQ(first.encode("</s>hi", false),
            (std::vector<std::int32_t>{2, *first.token_to_id("h"), *first.token_to_id("i")}));
}

}  // namespace
}  // namespace pagedserve
