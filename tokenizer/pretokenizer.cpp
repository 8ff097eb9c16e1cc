#define PCRE2_CODE_UNIT_WIDTH 8
#include "tokenizer/pretokenizer.h"

#include <pcre2.h>

#include <utility>

#include "core/error.h"
#include "tokenizer/unicode_utf8.h"

namespace pagedserve {

class CompiledRegex {
 public:
  explicit CompiledRegex(pcre2_code* code) : code_(code) {}
  ~CompiledRegex() { pcre2_code_free(code_); }
  CompiledRegex(const CompiledRegex&) = delete;
  CompiledRegex& operator=(const CompiledRegex&) = delete;

  // Match ranges [begin, end) of every non-overlapping match in `text`, left to right.
  std::vector<std::pair<std::size_t, std::size_t>> find_all(std::string_view text) const;

 private:
  pcre2_code* code_;
};

std::vector<std::pair<std::size_t, std::size_t>> CompiledRegex::find_all(std::string_view text) const {
  std::vector<std::pair<std::size_t, std::size_t>> matches;
  // Match data is per call so that concurrent callers never share it.
  std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> data(
      pcre2_match_data_create_from_pattern(code_, nullptr), &pcre2_match_data_free);
  if (!data) throw std::bad_alloc();
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  std::size_t offset = 0;
  while (offset <= text.size()) {
    // The text was validated once by the caller; PCRE2 need not check it on every call.
    const int rc = pcre2_match(code_, subject, text.size(), offset, PCRE2_NO_UTF_CHECK, data.get(), nullptr);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) {
      // Resource limits only: report the rest as unmatched rather than lose text.
      break;
    }
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(data.get());
    const std::size_t begin = ovector[0], end = ovector[1];
    if (end > begin) matches.emplace_back(begin, end);
    if (end > offset) {
      offset = end;
    } else {
      // Empty match: step over one character.
      if (offset >= text.size()) break;
      const std::size_t length = valid_utf8_prefix_char(text.substr(offset));
      offset += length == 0 ? 1 : length;
    }
  }
  return matches;
}

std::shared_ptr<const CompiledRegex> compile_regex(const std::string& pattern, bool literal,
                                                   const std::string& source) {
  int error = 0;
  PCRE2_SIZE error_offset = 0;
  const uint32_t options = PCRE2_UTF | PCRE2_UCP | (literal ? PCRE2_LITERAL : 0u);
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), options,
                                   &error, &error_offset, nullptr);
  if (code == nullptr) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(error, message, sizeof(message));
    throw SetupError(source, "regex /" + pattern + "/ at offset " + std::to_string(error_offset) + ": " +
                                 reinterpret_cast<const char*>(message));
  }
  // JIT is an optimisation only; the interpreter gives the same matches when it is unavailable.
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
  return std::make_shared<const CompiledRegex>(code);
}

namespace {

// GPT-2's pre-tokenizer pattern, used by ByteLevel with use_regex.
const std::shared_ptr<const CompiledRegex>& gpt2_regex() {
  static const auto regex =
      compile_regex(R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)", false,
                    "GPT-2 pre-tokenizer pattern");
  return regex;
}

void split_word(const std::string& word, const CompiledRegex& regex, SplitBehavior behavior, bool invert,
                std::vector<std::string>& out) {
  struct Piece {
    std::size_t begin, end;
    bool matched;
  };
  std::vector<Piece> pieces;
  std::size_t last = 0;
  for (const auto& [begin, end] : regex.find_all(word)) {
    if (begin > last) pieces.push_back({last, begin, invert});
    pieces.push_back({begin, end, !invert});
    last = end;
  }
  if (last < word.size()) pieces.push_back({last, word.size(), invert});

  const std::string_view text(word);
  const std::size_t first_new = out.size();
  bool pending_merge_next = false;
  for (std::size_t i = 0; i < pieces.size(); ++i) {
    const Piece& p = pieces[i];
    const std::string_view piece = text.substr(p.begin, p.end - p.begin);
    switch (behavior) {
      case SplitBehavior::kIsolated:
        out.emplace_back(piece);
        break;
      case SplitBehavior::kRemoved:
        if (!p.matched) out.emplace_back(piece);
        break;
      case SplitBehavior::kMergedWithPrevious:
        if (p.matched && out.size() > first_new && !pieces[i - 1].matched) {
          out.back().append(piece);
        } else {
          out.emplace_back(piece);
        }
        break;
      case SplitBehavior::kMergedWithNext:
        if (pending_merge_next) {
          out.back().append(piece);
        } else {
          out.emplace_back(piece);
        }
        pending_merge_next = p.matched;
        break;
      case SplitBehavior::kContiguous:
        if (p.matched && i > 0 && pieces[i - 1].matched) {
          out.back().append(piece);
        } else {
          out.emplace_back(piece);
        }
        break;
    }
  }
}

// Hugging Face applies a pre-tokenizer to every piece the previous ones produced; so do these.
void apply(const SplitStep& step, std::vector<std::string>& words, bool /*at_text_start*/,
           std::vector<std::string>& next) {
  for (const std::string& word : words) split_word(word, *step.regex, step.behavior, step.invert, next);
}

void apply(const ByteLevelStep& step, std::vector<std::string>& words, bool /*at_text_start*/,
           std::vector<std::string>& next) {
  const ByteLevelAlphabet& alphabet = ByteLevelAlphabet::instance();
  std::vector<std::string> parts;
  for (std::string& word : words) {
    if (step.add_prefix_space && !word.empty() && word[0] != ' ') {
      std::string prefixed;
      prefixed.reserve(word.size() + 1);
      prefixed.push_back(' ');
      prefixed.append(word);
      word = std::move(prefixed);
    }
    parts.clear();
    if (step.use_regex) {
      split_word(word, *gpt2_regex(), SplitBehavior::kIsolated, false, parts);
    } else {
      parts.push_back(std::move(word));
    }
    for (const std::string& part : parts) {
      std::string mapped;
      mapped.reserve(part.size() * 2);
      alphabet.encode_all(part, mapped);
      next.push_back(std::move(mapped));
    }
  }
}

void apply(const MetaspaceStep& step, std::vector<std::string>& words, bool at_text_start,
           std::vector<std::string>& next) {
  for (std::size_t w = 0; w < words.size(); ++w) {
    const std::string& source = words[w];
    // "first" means the piece at the very start of the input only.
    const bool prepend = step.prepend_scheme == PrependScheme::kAlways ||
                         (step.prepend_scheme == PrependScheme::kFirst && at_text_start && w == 0);
    std::string word;
    if (prepend && !source.starts_with(step.replacement) && !source.starts_with(' ')) word = step.replacement;
    for (const char c : source) {
      if (c == ' ') {
        word.append(step.replacement);
      } else {
        word.push_back(c);
      }
    }
    if (!step.split) {
      next.push_back(std::move(word));
      continue;
    }
    // Each word starts at a replacement character (kept with what follows it).
    std::size_t start = 0;
    for (std::size_t hit = word.find(step.replacement, 1); hit != std::string::npos;
         hit = word.find(step.replacement, hit + step.replacement.size())) {
      if (hit > start) next.push_back(word.substr(start, hit - start));
      start = hit;
    }
    if (start < word.size()) next.push_back(word.substr(start));
  }
}

}  // namespace

std::vector<std::string> PreTokenizer::split(std::string_view segment, bool at_text_start) const {
  std::vector<std::string> words;
  if (segment.empty()) return words;
  words.emplace_back(segment);
  for (const PreTokenizerStep& step : steps_) {
    std::vector<std::string> next;
    next.reserve(words.size());
    std::visit([&](const auto& s) { apply(s, words, at_text_start, next); }, step);
    words = std::move(next);
  }
  return words;
}

}  // namespace pagedserve
