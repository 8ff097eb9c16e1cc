// Pre-tokenization: splits normalised text into words that BPE encodes independently, and maps
// them into the vocabulary's alphabet (GPT-2 byte-level, or SentencePiece's "▁" for spaces).
// Covers the Hugging Face pre-tokenizers that byte-level and SentencePiece-style BPE tokenizers
// use: Split (regex or literal, PCRE2 with UTF and UCP), ByteLevel, Metaspace, Sequence.
// Immutable after construction; any thread may call split() concurrently.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace pagedserve {

// A compiled PCRE2 pattern (UTF + UCP, JIT when available). Shared, immutable.
class CompiledRegex;

enum class SplitBehavior { kIsolated, kRemoved, kMergedWithPrevious, kMergedWithNext, kContiguous };

struct SplitStep {
  std::shared_ptr<const CompiledRegex> regex;
  SplitBehavior behavior = SplitBehavior::kIsolated;
  bool invert = false;  // the pattern describes the gaps rather than the pieces
};

struct ByteLevelStep {
  bool add_prefix_space = false;  // a segment not starting with a space gets one
  bool use_regex = true;          // split with GPT-2's pattern before mapping bytes
};

enum class PrependScheme { kAlways, kFirst, kNever };

struct MetaspaceStep {
  std::string replacement = "\xE2\x96\x81";  // U+2581 "▁"
  PrependScheme prepend_scheme = PrependScheme::kAlways;
  bool split = true;  // start a new word at every replacement character
};

using PreTokenizerStep = std::variant<SplitStep, ByteLevelStep, MetaspaceStep>;

// Compiles `pattern` (a regex, or literal text when `literal`). Throws SetupError naming
// `source` when PCRE2 rejects it.
std::shared_ptr<const CompiledRegex> compile_regex(const std::string& pattern, bool literal,
                                                   const std::string& source);

class PreTokenizer {
 public:
  PreTokenizer() = default;
  explicit PreTokenizer(std::vector<PreTokenizerStep> steps) : steps_(std::move(steps)) {}

  // Splits one segment of normalised text (valid UTF-8) into words. `at_text_start` tells whether
  // the segment begins the whole input (Metaspace's "first" prepend scheme).
  std::vector<std::string> split(std::string_view segment, bool at_text_start) const;

 private:
  std::vector<PreTokenizerStep> steps_;
};

}  // namespace pagedserve
