#include "tokenizer/tokenizer.h"

#include "tokenizer/tokenizer_data.h"
#include "tokenizer/unicode_utf8.h"

namespace pagedserve {

Tokenizer Tokenizer::load(const std::filesystem::path& model_dir) {
  return load_files(model_dir / "tokenizer.json", model_dir / "tokenizer_config.json");
}

Tokenizer Tokenizer::load_files(const std::filesystem::path& tokenizer_json,
                                const std::filesystem::path& config_path) {
  return Tokenizer(load_tokenizer_data(tokenizer_json, config_path));
}

std::vector<std::int32_t> Tokenizer::encode(std::string_view text, bool add_special_tokens) const {
  const TokenizerData& data = *data_;
  // Everything downstream (PCRE2 without its own UTF check, the BPE's character split) relies on
  // valid UTF-8, so repair the input once here.
  std::string repaired;
  if (!is_valid_utf8(text)) {
    append_utf8_lossy(text, repaired, true);
    text = repaired;
  }

  std::vector<std::int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  if (add_special_tokens) ids.insert(ids.end(), data.prefix_ids.begin(), data.prefix_ids.end());
  for (const TextSegment& segment : data.added_tokens.split(text)) {
    if (segment.added_id) {
      ids.push_back(*segment.added_id);
      continue;
    }
    const std::string normalized = data.normalizer.normalize(segment.text);
    for (const std::string& word : data.pre_tokenizer.split(normalized, segment.offset == 0)) {
      data.model->encode_word(word, ids);
    }
  }
  if (add_special_tokens) ids.insert(ids.end(), data.suffix_ids.begin(), data.suffix_ids.end());
  return ids;
}

std::string Tokenizer::decode(std::span<const std::int32_t> ids, bool skip_special_tokens) const {
  IncrementalDecoder decoder(*this, skip_special_tokens);
  std::string text;
  for (const std::int32_t id : ids) text += decoder.push(id);
  text += decoder.flush();
  return text;
}

int Tokenizer::vocab_size() const { return data_->vocab_size; }

std::optional<std::int32_t> Tokenizer::token_to_id(std::string_view token) const {
  if (const auto id = data_->added_tokens.find_by_content(token)) return id;
  return data_->model->token_to_id(token);
}

std::optional<std::string> Tokenizer::id_to_token(std::int32_t id) const {
  if (const AddedToken* added = data_->added_tokens.find_by_id(id)) return added->content;
  if (const std::string* token = data_->model->id_to_token(id)) return *token;
  return std::nullopt;
}

bool Tokenizer::is_special(std::int32_t id) const {
  return id >= 0 && id < data_->vocab_size && data_->special[static_cast<std::size_t>(id)] != 0;
}

std::optional<std::int32_t> Tokenizer::bos_id() const { return data_->bos_id; }

std::vector<std::int32_t> Tokenizer::eos_ids() const {
  if (data_->eos_id) return {*data_->eos_id};
  return {};
}

bool Tokenizer::adds_bos() const {
  return data_->bos_id && !data_->prefix_ids.empty() && data_->prefix_ids.front() == *data_->bos_id;
}

}  // namespace pagedserve
