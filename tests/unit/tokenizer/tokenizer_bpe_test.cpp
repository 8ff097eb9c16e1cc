// Byte-level BPE on a hand-made vocabulary: merge ranking, both merge spellings, ignore_merges,
// added tokens, the byte-level decoder.
#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "tokenizer/tokenizer.h"
#include "tests/unit/tokenizer/tokenizer_fixtures.h"
#include "tests/unit/tokenizer/tokenizer_test_util.h"

namespace pagedserve {
namespace {

using testing::byte_level_tokenizer_json;
using testing::TempDir;
using Merges = std::vector<std::pair<std::string, std::string>>;

Tokenizer load_json(const TempDir& dir, const nlohmann::json& tokenizer) {
  dir.write("tokenizer.json", tokenizer.dump());
  return Tokenizer::load(dir.path());
}

std::vector<std::int32_t> ids_of(const Tokenizer& t, std::initializer_list<const char*> tokens) {
  std::vector<std::int32_t> ids;
  for (const char* token : tokens) {
    const auto id = t.token_to_id(token);
    EXPECT_TRUE(id.has_value()) << token;
    ids.push_back(id.value_or(-1));
  }
  return ids;
}

const Merges kHelloMerges = {{"h", "e"}, {"l", "l"},   {"he", "ll"},  {"hell", "o"}, {"Ġ", "w"},
                             {"o", "r"}, {"Ġw", "or"}, {"Ġwor", "l"}, {"Ġworl", "d"}};

TEST(TokenizerBpeTest, MergesByRank) {
  TempDir dir;
  const Tokenizer t = load_json(dir, byte_level_tokenizer_json(kHelloMerges, true));
  EXPECT_EQ(t.encode("hello world", false), ids_of(t, {"hello", "Ġworld"}));
  EXPECT_EQ(t.encode("hello worlds", false), ids_of(t, {"hello", "Ġworld", "s"}));
  EXPECT_EQ(t.encode("help", false), ids_of(t, {"he", "l", "p"}));
  EXPECT_EQ(t.decode(t.encode("hello world", false), false), "hello world");
}

TEST(TokenizerBpeTest, EarlierMergeWins) {
  TempDir dir;
  const Tokenizer ab_first = load_json(dir, byte_level_tokenizer_json({{"a", "b"}, {"b", "c"}}, true));
  EXPECT_EQ(ab_first.encode("abc", false), ids_of(ab_first, {"ab", "c"}));
  TempDir dir2;
  const Tokenizer bc_first = load_json(dir2, byte_level_tokenizer_json({{"b", "c"}, {"a", "b"}}, true));
  EXPECT_EQ(bc_first.encode("abc", false), ids_of(bc_first, {"a", "bc"}));
  // Equal ranks: leftmost pair first.
  TempDir dir3;
  const Tokenizer aa = load_json(dir3, byte_level_tokenizer_json({{"a", "a"}}, true));
  EXPECT_EQ(aa.encode("aaa", false), ids_of(aa, {"aa", "a"}));
}

TEST(TokenizerBpeTest, MergeSpellingsAgree) {
  TempDir a, b;
  const Tokenizer strings = load_json(a, byte_level_tokenizer_json(kHelloMerges, true));
  const Tokenizer arrays = load_json(b, byte_level_tokenizer_json(kHelloMerges, false));
  for (const char* text : {"hello world", "hellohello  world\n", "wor ld", ""}) {
    EXPECT_EQ(strings.encode(text, false), arrays.encode(text, false)) << text;
  }
}

TEST(TokenizerBpeTest, IgnoreMergesEmitsWholeVocabularyWords) {
  auto json = byte_level_tokenizer_json({{"a", "b"}}, true);
  json["model"]["vocab"]["abc"] = 1000;  // in the vocabulary, but no merge builds it
  TempDir with_merges;
  const Tokenizer merged = load_json(with_merges, json);
  EXPECT_EQ(merged.encode("abc", false), ids_of(merged, {"ab", "c"}));
  json["model"]["ignore_merges"] = true;
  TempDir ignoring;
  const Tokenizer whole = load_json(ignoring, json);
  EXPECT_EQ(whole.encode("abc", false), std::vector<std::int32_t>{1000});
  EXPECT_EQ(whole.encode("abcd", false), ids_of(whole, {"ab", "c", "d"}));
}

TEST(TokenizerBpeTest, AddedTokensAreSplitOutFirst) {
  TempDir dir;
  const Tokenizer t = load_json(dir, byte_level_tokenizer_json(kHelloMerges, true));
  const std::int32_t end = *t.token_to_id("<|end|>");
  const std::int32_t tool = *t.token_to_id("<tool>");
  EXPECT_TRUE(t.is_special(end));
  EXPECT_FALSE(t.is_special(tool));
  const auto ids = t.encode("hello<|end|><tool> world<|end|>", false);
  const std::vector<std::int32_t> expected = {*t.token_to_id("hello"), end, tool, *t.token_to_id("Ġworld"),
                                              end};
  EXPECT_EQ(ids, expected);
  EXPECT_EQ(t.decode(ids, false), "hello<|end|><tool> world<|end|>");
  EXPECT_EQ(t.decode(ids, true), "hello<tool> world");
  // A partial special token is plain text.
  EXPECT_EQ(t.decode(t.encode("<|end|", false), false), "<|end|");
  for (const auto id : t.encode("<|end|", false)) EXPECT_NE(id, end);
}

TEST(TokenizerBpeTest, AddedTokensMayStripSurroundingWhitespace) {
  auto json = byte_level_tokenizer_json(kHelloMerges, true);
  json["added_tokens"].push_back({{"id", 900}, {"content", "<mask>"}, {"special", true}, {"lstrip", true}});
  json["added_tokens"].push_back({{"id", 901}, {"content", "<sep>"}, {"special", true}, {"rstrip", true}});
  TempDir dir;
  const Tokenizer t = load_json(dir, json);
  const std::int32_t hello = *t.token_to_id("hello");
  EXPECT_EQ(t.encode("hello  <mask>", false), (std::vector<std::int32_t>{hello, 900}));
  EXPECT_EQ(t.encode("<sep> \n hello", false), (std::vector<std::int32_t>{901, hello}));
  // Without the flags the whitespace stays text.
  EXPECT_EQ(t.encode("hello <|end|>", false).size(), 3u);
}

TEST(TokenizerBpeTest, VocabSizeCoversAddedTokens) {
  TempDir dir;
  const Tokenizer t = load_json(dir, byte_level_tokenizer_json(kHelloMerges, true));
  EXPECT_EQ(t.vocab_size(), *t.token_to_id("<tool>") + 1);
  EXPECT_EQ(t.id_to_token(*t.token_to_id("Ġworld")), "Ġworld");
  EXPECT_FALSE(t.id_to_token(t.vocab_size()).has_value());
  // Ids past the vocabulary (a padded embedding table) decode to nothing.
  const std::vector<std::int32_t> ids = {*t.token_to_id("hello"), t.vocab_size() + 7, -1};
  EXPECT_EQ(t.decode(ids, false), "hello");
}

TEST(TokenizerBpeTest, NoConfigMeansNoBosOrEos) {
  TempDir dir;
  const Tokenizer t = load_json(dir, byte_level_tokenizer_json(kHelloMerges, true));
  EXPECT_FALSE(t.bos_id().has_value());
  EXPECT_TRUE(t.eos_ids().empty());
  EXPECT_EQ(t.encode("hello", true), t.encode("hello", false));
}

TEST(TokenizerBpeTest, ConfigGivesBosAndEos) {
  TempDir dir;
  dir.write("tokenizer_config.json",
            R"({"bos_token": {"content": "<|end|>"}, "eos_token": "<|end|>", "add_bos_token": true,
                "add_eos_token": true})");
  const Tokenizer t = load_json(dir, byte_level_tokenizer_json(kHelloMerges, true));
  const std::int32_t end = *t.token_to_id("<|end|>");
  EXPECT_EQ(t.bos_id(), end);
  EXPECT_EQ(t.eos_ids(), std::vector<std::int32_t>{end});
  EXPECT_TRUE(t.adds_bos());
  const std::vector<std::int32_t> expected = {end, *t.token_to_id("hello"), end};
  EXPECT_EQ(t.encode("hello", true), expected);
}

TEST(TokenizerBpeTest, TemplatePostProcessorAddsItsSpecialTokens) {
  auto json = byte_level_tokenizer_json(kHelloMerges, true);
  json["post_processor"] = nlohmann::json::parse(R"({"type": "TemplateProcessing",
      "single": [{"SpecialToken": {"id": "<|end|>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
      "pair": [], "special_tokens": {}})");
  TempDir dir;
  const Tokenizer t = load_json(dir, json);
  const std::vector<std::int32_t> expected = {*t.token_to_id("<|end|>"), *t.token_to_id("hello")};
  EXPECT_EQ(t.encode("hello", true), expected);
  EXPECT_EQ(t.encode("hello", false), std::vector<std::int32_t>{*t.token_to_id("hello")});
}

TEST(TokenizerBpeTest, InvalidUtf8InputIsEncodedAsReplacementCharacters) {
  TempDir dir;
  const Tokenizer t = load_json(dir, byte_level_tokenizer_json(kHelloMerges, true));
  EXPECT_EQ(t.encode("he\xFFllo\xE2\x82", false), t.encode("he\xEF\xBF\xBDllo\xEF\xBF\xBD", false));
  EXPECT_EQ(t.decode(t.encode("he\xFFllo", false), false), "he\xEF\xBF\xBDllo");
}

// One Tokenizer shared by several threads (the server's connection threads do this).
TEST(TokenizerBpeTest, ConcurrentUseGivesTheSameResults) {
  TempDir dir;
  const Tokenizer t = load_json(dir, byte_level_tokenizer_json(kHelloMerges, true));
  const std::string text = "hello world<|end|> hellohello  worlds\n";
  const auto expected = t.encode(text, false);
  std::vector<std::thread> threads;
  std::vector<int> mismatches(4, 0);
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      const Tokenizer copy = t;  // copies share the tables
      for (int round = 0; round < 200; ++round) {
        if (copy.encode(text, false) != expected || copy.decode(expected, false) != text) ++mismatches[i];
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(mismatches, std::vector<int>(4, 0));
}

}  // namespace
}  // namespace pagedserve
