// Setup errors name the file and the field.
#include <gtest/gtest.h>

#include <string>

#include "core/error.h"
#include "tokenizer/tokenizer.h"
#include "tests/unit/tokenizer/tokenizer_fixtures.h"
#include "tests/unit/tokenizer/tokenizer_test_util.h"

namespace pagedserve {
namespace {

using testing::byte_level_tokenizer_json;
using testing::TempDir;

// Loads dir and returns the SetupError's message ("" when loading succeeds).
std::string load_error(const TempDir& dir) {
  try {
    Tokenizer::load(dir.path());
  } catch (const SetupError& e) {
    return e.what();
  }
  return "";
}

std::string load_error(const TempDir& dir, const nlohmann::json& tokenizer) {
  dir.write("tokenizer.json", tokenizer.dump());
  return load_error(dir);
}

nlohmann::json good() { return byte_level_tokenizer_json({{"a", "b"}}, true); }

TEST(TokenizerErrorsTest, MissingFile) {
  TempDir dir;
  const std::string error = load_error(dir);
  EXPECT_NE(error.find((dir.path() / "tokenizer.json").string()), std::string::npos) << error;
  EXPECT_NE(error.find("cannot open"), std::string::npos) << error;
}

TEST(TokenizerErrorsTest, BadJson) {
  TempDir dir;
  dir.write("tokenizer.json", R"({"model": {"type": "BPE", "vocab": {)");
  const std::string error = load_error(dir);
  EXPECT_NE(error.find("tokenizer.json"), std::string::npos) << error;
  EXPECT_NE(error.find("invalid JSON"), std::string::npos) << error;
}

TEST(TokenizerErrorsTest, UnknownModelType) {
  TempDir dir;
  auto json = good();
  json["model"]["type"] = "Unigram";
  const std::string error = load_error(dir, json);
  EXPECT_NE(error.find("tokenizer.json: model.type"), std::string::npos) << error;
  EXPECT_NE(error.find("Unigram"), std::string::npos) << error;
}

TEST(TokenizerErrorsTest, MissingModel) {
  TempDir dir;
  auto json = good();
  json.erase("model");
  EXPECT_NE(load_error(dir, json).find("tokenizer.json: model: missing"), std::string::npos);
}

TEST(TokenizerErrorsTest, MergeOfUnknownTokens) {
  TempDir dir;
  auto json = good();
  json["model"]["merges"].push_back("zz qq");
  const std::string error = load_error(dir, json);
  EXPECT_NE(error.find("model.merges[1]"), std::string::npos) << error;
}

TEST(TokenizerErrorsTest, MalformedMerge) {
  TempDir dir;
  auto json = good();
  json["model"]["merges"].push_back(42);
  EXPECT_NE(load_error(dir, json).find("model.merges[1]"), std::string::npos);
}

TEST(TokenizerErrorsTest, MalformedVocabularyAndMergeEntries) {
  TempDir dir;
  auto json = good();
  json["model"]["vocab"]["zz"] = "seven";
  EXPECT_NE(load_error(dir, json).find("model.vocab[\"zz\"]"), std::string::npos);
  json = good();
  json["model"]["merges"].push_back("nospace");
  EXPECT_NE(load_error(dir, json).find("model.merges[1]: \"nospace\" is not two tokens"), std::string::npos);
  json = good();
  json["model"]["merges"].push_back({"a"});
  EXPECT_NE(load_error(dir, json).find("model.merges[1]"), std::string::npos);
  json = good();
  json["model"]["merges"] = "a b";
  EXPECT_NE(load_error(dir, json).find("model.merges: not an array"), std::string::npos);
}

TEST(TokenizerErrorsTest, UnsupportedNormalizerAndPreTokenizer) {
  TempDir dir;
  auto json = good();
  json["normalizer"] = {{"type", "NFKC"}};
  EXPECT_NE(load_error(dir, json).find("normalizer.type"), std::string::npos);
  json = good();
  json["pre_tokenizer"]["pretokenizers"][1] = {{"type", "Whitespace"}};
  EXPECT_NE(load_error(dir, json).find("pre_tokenizer.pretokenizers[1].type"), std::string::npos);
  json = good();
  json["decoder"] = {{"type", "WordPiece"}};
  EXPECT_NE(load_error(dir, json).find("decoder.type"), std::string::npos);
}

TEST(TokenizerErrorsTest, BadRegex) {
  TempDir dir;
  auto json = good();
  json["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "(unclosed";
  const std::string error = load_error(dir, json);
  EXPECT_NE(error.find("pre_tokenizer.pretokenizers[0].pattern"), std::string::npos) << error;
  EXPECT_NE(error.find("regex"), std::string::npos) << error;
}

TEST(TokenizerErrorsTest, UnknownTokenInConfig) {
  TempDir dir;
  dir.write("tokenizer_config.json", R"({"eos_token": "<|nope|>"})");
  const std::string error = load_error(dir, good());
  EXPECT_NE(error.find("tokenizer_config.json: eos_token"), std::string::npos) << error;
  dir.write("tokenizer_config.json", "[1, 2");
  EXPECT_NE(load_error(dir, good()).find("tokenizer_config.json: invalid JSON"), std::string::npos);
}

TEST(TokenizerErrorsTest, BadAddedToken) {
  TempDir dir;
  auto json = good();
  json["added_tokens"].push_back({{"content", "<x>"}});
  EXPECT_NE(load_error(dir, json).find("added_tokens[2]"), std::string::npos);
}

}  // namespace
}  // namespace pagedserve
