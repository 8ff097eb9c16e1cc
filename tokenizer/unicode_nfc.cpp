#include "tokenizer/unicode_nfc.h"

#include <algorithm>
#include <vector>

#include "tokenizer/unicode_nfc_tables.h"
#include "tokenizer/unicode_utf8.h"

namespace pagedserve {

namespace {

using namespace nfc_tables;

// Hangul syllables decompose and compose arithmetically (Unicode §3.12).
constexpr char32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr char32_t kLCount = 19, kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount;
constexpr char32_t kSCount = kLCount * kNCount;

int combining_class(char32_t cp) {
  if (cp < 0x300) return 0;
  const auto* end = kCombiningClasses + kCombiningClassesSize;
  const auto* it = std::upper_bound(kCombiningClasses, end, cp,
                                    [](char32_t v, const CombiningClassRange& r) { return v < r.first; });
  if (it == kCombiningClasses) return 0;
  --it;
  return cp <= it->last ? it->combining_class : 0;
}

const Decomposition* find_decomposition(char32_t cp) {
  const auto* end = kDecompositions + kDecompositionsSize;
  const auto* it = std::lower_bound(kDecompositions, end, cp,
                                    [](const Decomposition& d, char32_t v) { return d.code_point < v; });
  return it != end && it->code_point == cp ? it : nullptr;
}

// Whether a normalisation segment may start at `cp`: nothing before it can combine with it or
// be reordered past it, so text on either side normalises independently.
bool is_segment_start(char32_t cp) {
  if (cp < 0x300) return true;
  if (cp >= kVBase && cp < kVBase + kVCount) return false;  // Hangul vowel jamo
  if (cp > kTBase && cp < kTBase + kTCount) return false;   // Hangul trailing jamo
  const auto* end = kNonBoundaryRanges + kNonBoundaryRangesSize;
  const auto* it = std::upper_bound(kNonBoundaryRanges, end, cp,
                                    [](char32_t v, const CodePointRange& r) { return v < r.first; });
  if (it == kNonBoundaryRanges) return true;
  --it;
  return cp > it->last;
}

void decompose(char32_t cp, std::vector<char32_t>& out) {
  if (cp >= kSBase && cp < kSBase + kSCount) {
    const char32_t s = cp - kSBase;
    out.push_back(kLBase + s / kNCount);
    out.push_back(kVBase + (s % kNCount) / kTCount);
    if (s % kTCount != 0) out.push_back(kTBase + s % kTCount);
    return;
  }
  if (const Decomposition* d = find_decomposition(cp)) {
    out.insert(out.end(), kDecompositionPool + d->offset, kDecompositionPool + d->offset + d->length);
  } else {
    out.push_back(cp);
  }
}

// The primary composite of (first, second), or 0.
char32_t compose(char32_t first, char32_t second) {
  if (first >= kLBase && first < kLBase + kLCount && second >= kVBase && second < kVBase + kVCount) {
    return kSBase + ((first - kLBase) * kVCount + (second - kVBase)) * kTCount;
  }
  if (first >= kSBase && first < kSBase + kSCount && (first - kSBase) % kTCount == 0 && second > kTBase &&
      second < kTBase + kTCount) {
    return first + (second - kTBase);
  }
  const auto* end = kCompositions + kCompositionsSize;
  const auto* it = std::lower_bound(kCompositions, end, std::pair{first, second},
                                    [](const Composition& c, const std::pair<char32_t, char32_t>& v) {
                                      return c.first != v.first ? c.first < v.first : c.second < v.second;
                                    });
  return it != end && it->first == first && it->second == second ? it->composite : 0;
}

// Full NFC of one segment: decompose, put marks in canonical order, recompose.
void normalize_segment(std::string_view segment, std::string& out) {
  std::vector<char32_t> chars;
  for (std::size_t pos = 0; pos < segment.size();) decompose(next_code_point(segment, pos), chars);

  // Canonical ordering: a stable sort of each run of non-starters by combining class.
  for (std::size_t i = 0; i < chars.size();) {
    if (combining_class(chars[i]) == 0) {
      ++i;
      continue;
    }
    std::size_t j = i;
    while (j < chars.size() && combining_class(chars[j]) != 0) ++j;
    std::stable_sort(chars.begin() + static_cast<std::ptrdiff_t>(i),
                     chars.begin() + static_cast<std::ptrdiff_t>(j),
                     [](char32_t a, char32_t b) { return combining_class(a) < combining_class(b); });
    i = j;
  }

  // Canonical composition: a character joins the last starter unless a character of the same
  // or higher class (or a starter) stands between them.
  std::vector<char32_t> result;
  result.reserve(chars.size());
  std::ptrdiff_t starter = -1;
  int last_class = -1;
  for (const char32_t c : chars) {
    const int cls = combining_class(c);
    if (starter >= 0 && (last_class < cls || last_class == 0)) {
      if (const char32_t composite = compose(result[static_cast<std::size_t>(starter)], c)) {
        result[static_cast<std::size_t>(starter)] = composite;
        continue;
      }
    }
    if (cls == 0) {
      starter = static_cast<std::ptrdiff_t>(result.size());
      last_class = 0;
    } else {
      last_class = cls;
    }
    result.push_back(c);
  }
  for (const char32_t c : result) append_utf8(c, out);
}

}  // namespace

std::string nfc_normalize(std::string_view text) {
  std::size_t first_work = 0;
  while (first_work < text.size() && static_cast<unsigned char>(text[first_work]) < 0xCC) ++first_work;
  if (first_work == text.size()) return std::string(text);  // every code point is below U+0300

  std::string out;
  out.reserve(text.size() + text.size() / 8);
  std::size_t pos = 0;
  while (pos < text.size()) {
    // A segment: one segment-start character and the non-start characters after it.
    const std::size_t begin = pos;
    const char32_t first = next_code_point(text, pos);
    bool simple = first < 0x300 || !find_decomposition(first);
    if (first >= kSBase && first < kSBase + kSCount) simple = true;  // Hangul syllable: already composed
    while (pos < text.size()) {
      std::size_t next = pos;
      const char32_t cp = next_code_point(text, next);
      if (is_segment_start(cp)) break;
      simple = false;
      pos = next;
    }
    const std::string_view segment = text.substr(begin, pos - begin);
    if (simple) {
      out.append(segment);
    } else {
      normalize_segment(segment, out);
    }
  }
  return out;
}

}  // namespace pagedserve
