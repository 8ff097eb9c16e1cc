#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_data.h"
#include "tokenizer/unicode_utf8.h"

namespace pagedserve {

IncrementalDecoder::IncrementalDecoder(const Tokenizer& tokenizer, bool skip_special_tokens)
    : data_(tokenizer.data_),
      skip_special_tokens_(skip_special_tokens),
      leading_spaces_to_strip_(data_->strip_leading_spaces) {}

std::string IncrementalDecoder::push(std::int32_t token) {
  const TokenizerData& data = *data_;
  if (token < 0 || token >= data.vocab_size) return {};
  const auto index = static_cast<std::size_t>(token);
  if (skip_special_tokens_ && data.special[index] != 0) return {};
  std::string_view bytes = data.token_bytes[index];
  // The decoder's Strip acts once on the whole text, so only on the first bytes of the stream;
  // tokens that decode to nothing leave it pending.
  while (!started_ && leading_spaces_to_strip_ > 0 && !bytes.empty()) {
    if (bytes.front() != ' ') {
      leading_spaces_to_strip_ = 0;
      break;
    }
    bytes.remove_prefix(1);
    --leading_spaces_to_strip_;
  }
  if (bytes.empty()) return {};
  started_ = true;

  std::string text;
  if (pending_.empty()) {
    const std::size_t used = append_utf8_lossy(bytes, text, false);
    pending_.assign(bytes.substr(used));
  } else {
    pending_.append(bytes);
    const std::size_t used = append_utf8_lossy(pending_, text, false);
    pending_.erase(0, used);
  }
  return text;
}

std::string IncrementalDecoder::flush() {
  std::string text;
  append_utf8_lossy(pending_, text, true);
  pending_.clear();
  started_ = false;
  leading_spaces_to_strip_ = data_->strip_leading_spaces;
  return text;
}

}  // namespace pagedserve
