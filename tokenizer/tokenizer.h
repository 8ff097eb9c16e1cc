// A Hugging Face tokenizer.json tokenizer: byte-level BPE (GPT-2, Llama-3, Qwen2/3) and
// SentencePiece-style BPE with byte fallback (Llama-2, Mistral), with added/special tokens and
// bos/eos from tokenizer_config.json.
//
// Ownership and threads: a Tokenizer is an immutable value that shares its tables (copies are
// cheap); every const method may be called from any thread concurrently. An IncrementalDecoder
// belongs to one request and one thread at a time; it keeps its Tokenizer's tables alive.
//
// Failure: load() throws SetupError naming the file and the field. encode() and decode() never
// throw on the request path: invalid UTF-8 in encode's input is encoded as U+FFFD, and ids the
// tokenizer does not know decode to nothing (a model's embedding table is often padded past the
// vocabulary, and random weights may sample those ids).
//
// Encoding follows the Hugging Face `tokenizers` pipeline: added tokens are split out first
// (leftmost, longest), each remaining segment is normalised, pre-tokenized and BPE-encoded;
// add_special_tokens adds what tokenizer_config.json's add_bos_token/add_eos_token ask for, else
// what a TemplateProcessing post-processor adds, else bos when a bos_token is configured.
// Checked against llama.cpp's vectors for Qwen2/3, Llama-3, GPT-2 and Llama-2 (SentencePiece).
//
// Known gaps: Unigram and WordPiece models; normalizers other than NFC/Prepend/Replace(String)/
// Sequence; pre-tokenizers other than Split/ByteLevel/Metaspace/Sequence; decoders other than
// ByteLevel/ByteFallback/Fuse/Replace(String)/Strip(leading spaces)/Metaspace. Added tokens with
// `normalized: true` are matched on the raw text and `single_word` is ignored. Invalid UTF-8 from
// byte tokens becomes one U+FFFD per maximal invalid subpart (Hugging Face's ByteFallback writes
// one per byte token). transformers' clean_up_tokenization_spaces is not applied (it breaks
// decode(encode(x)) == x). NFC uses Unicode 14 tables.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace pagedserve {

struct TokenizerData;

class Tokenizer {
 public:
  // Reads model_dir/tokenizer.json and, when present, model_dir/tokenizer_config.json.
  static Tokenizer load(const std::filesystem::path& model_dir);
  // Reads one tokenizer.json file; `config_path` may be empty (no tokenizer_config.json).
  static Tokenizer load_files(const std::filesystem::path& tokenizer_json,
                              const std::filesystem::path& config_path);

  // Added and special tokens written in `text` are recognised as such. With add_special_tokens,
  // bos is prepended (and eos appended) as tokenizer_config.json / the post-processor asks.
  std::vector<std::int32_t> encode(std::string_view text, bool add_special_tokens) const;

  // Always valid UTF-8: byte sequences that do not form characters become U+FFFD.
  std::string decode(std::span<const std::int32_t> ids, bool skip_special_tokens) const;

  // One past the largest id of the vocabulary and the added tokens.
  int vocab_size() const;
  // Looks up vocabulary entries (in the vocabulary's alphabet, e.g. "Ġhello") and added tokens.
  std::optional<std::int32_t> token_to_id(std::string_view token) const;
  // The vocabulary or added-token string of `id`, as written in tokenizer.json.
  std::optional<std::string> id_to_token(std::int32_t id) const;
  bool is_special(std::int32_t id) const;

  std::optional<std::int32_t> bos_id() const;
  // From tokenizer_config.json's eos_token when present; empty otherwise.
  std::vector<std::int32_t> eos_ids() const;
  // Whether encode(text, true) prepends bos_id().
  bool adds_bos() const;

 private:
  friend class IncrementalDecoder;
  explicit Tokenizer(std::shared_ptr<const TokenizerData> data) : data_(std::move(data)) {}
  std::shared_ptr<const TokenizerData> data_;
};

// Turns a stream of generated ids into text as it becomes complete: push() returns only whole
// UTF-8 characters (bytes of a character split across tokens are held back), and the
// concatenation of every push() and the final flush() equals tokenizer.decode(all ids).
class IncrementalDecoder {
 public:
  explicit IncrementalDecoder(const Tokenizer& tokenizer, bool skip_special_tokens = true);

  // New complete text only; may be empty.
  std::string push(std::int32_t token);
  // Whatever is held back, with an incomplete trailing character as U+FFFD. The decoder may
  // continue to be used afterwards as if the stream had started afresh.
  std::string flush();

 private:
  std::shared_ptr<const TokenizerData> data_;
  bool skip_special_tokens_;
  std::string pending_;          // bytes of an incomplete trailing character
  int leading_spaces_to_strip_;  // left of the decoder's Strip at the start of the text
  bool started_ = false;         // some non-empty bytes have been produced
};

}  // namespace pagedserve
