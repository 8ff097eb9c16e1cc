// Text normalisation before pre-tokenization: the subset of Hugging Face normalizers that
// byte-level and SentencePiece-style BPE tokenizers use (NFC, Prepend, Replace, Sequence).
// Immutable after construction; any thread may call normalize() concurrently.
#pragma once

#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace pagedserve {

struct NfcNormalization {};
struct PrependNormalization {
  std::string prefix;  // added in front of every non-empty segment
};
struct ReplaceNormalization {
  std::string pattern;  // literal text
  std::string content;
};
using NormalizationStep = std::variant<NfcNormalization, PrependNormalization, ReplaceNormalization>;

class Normalizer {
 public:
  Normalizer() = default;
  explicit Normalizer(std::vector<NormalizationStep> steps) : steps_(std::move(steps)) {}

  // `text` is valid UTF-8; so is the result.
  std::string normalize(std::string_view text) const;
  bool empty() const { return steps_.empty(); }

 private:
  std::vector<NormalizationStep> steps_;
};

}  // namespace pagedserve
