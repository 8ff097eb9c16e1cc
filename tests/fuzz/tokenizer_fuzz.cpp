// Fuzzes the tokenizer with any bytes and any ids, on three real tokenizer.json files: Qwen3's and
// Llama 3's byte-level BPE (the tiny models' tokenizers) and Llama 2's SentencePiece BPE with byte
// fallback (llama.cpp's test vocabulary). encode() takes the bytes as text (invalid UTF-8
// included); decode() and the IncrementalDecoder take them as ids, out-of-vocabulary and negative
// ones too, as a model with a padded embedding table may sample them.
//
// Checked: ids from encode() are in the vocabulary; decode() is valid UTF-8; the incremental
// decoder's pushes + flush equal decode() of the same ids (its contract, tokenizer/tokenizer.h).
//
// Input: byte 0 picks the tokenizer and flags; the rest is the text, and as little-endian
// 3-byte ids, the id stream.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tests/fuzz/fuzz_check.h"
#include "tests/fuzz/fuzz_files.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode_utf8.h"

using namespace pagedserve;

namespace {

Tokenizer load(const std::string& dir) {
  fuzz::read_source_file(dir + "/tokenizer.json");  // a clear message when it is absent
  return Tokenizer::load(fuzz::source_path(dir));
}

struct Tokenizers {
  Tokenizer qwen3 = load("models/tiny-qwen3");
  Tokenizer llama3 = load("models/tiny-llama");
  Tokenizer llama_spm = load("tests/data/generated/tokenizer-vectors/llama-spm");
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const Tokenizers tokenizers;
  if (size == 0) return 0;
  const std::uint8_t flags = data[0];
  const Tokenizer& tokenizer =
      flags % 3 == 0 ? tokenizers.qwen3 : (flags % 3 == 1 ? tokenizers.llama3 : tokenizers.llama_spm);
  const bool add_special = flags & 4;
  const bool skip_special = flags & 8;
  std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);

  std::vector<std::int32_t> encoded = tokenizer.encode(text, add_special);
  for (std::int32_t id : encoded) FUZZ_CHECK(id >= 0 && id < tokenizer.vocab_size());

  // Ids: 3 bytes each, so a few land past the vocabulary (up to 2^24) and, offset, below zero.
  std::vector<std::int32_t> ids;
  for (std::size_t i = 1; i + 3 <= size; i += 3) {
    std::int32_t id = std::int32_t(data[i]) | std::int32_t(data[i + 1]) << 8 | std::int32_t(data[i + 2]) << 16;
    ids.push_back((flags & 16) ? id - (1 << 23) : id % (tokenizer.vocab_size() + 8));
  }
  std::string decoded = tokenizer.decode(ids, skip_special);
  FUZZ_CHECK(is_valid_utf8(decoded));
  IncrementalDecoder incremental(tokenizer, skip_special);
  std::string streamed;
  for (std::int32_t id : ids) streamed += incremental.push(id);
  streamed += incremental.flush();
  FUZZ_CHECK(streamed == decoded);
  return 0;
}
