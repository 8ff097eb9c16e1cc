#include "tokenizer/tokenizer_normalizer.h"

#include <type_traits>

#include "tokenizer/unicode_nfc.h"

namespace pagedserve {

namespace {

std::string replace_all(std::string_view text, std::string_view pattern, std::string_view content) {
  if (pattern.empty()) return std::string(text);
  std::string out;
  out.reserve(text.size());
  std::size_t pos = 0;
  for (std::size_t hit; (hit = text.find(pattern, pos)) != std::string_view::npos;) {
    out.append(text.substr(pos, hit - pos));
    out.append(content);
    pos = hit + pattern.size();
  }
  out.append(text.substr(pos));
  return out;
}

}  // namespace

std::string Normalizer::normalize(std::string_view text) const {
  std::string current(text);
  for (const NormalizationStep& step : steps_) {
    std::visit(
        [&](const auto& s) {
          using Step = std::decay_t<decltype(s)>;
          if constexpr (std::is_same_v<Step, NfcNormalization>) {
            current = nfc_normalize(current);
          } else if constexpr (std::is_same_v<Step, PrependNormalization>) {
            if (!current.empty()) current = s.prefix + current;
          } else {
            current = replace_all(current, s.pattern, s.content);
          }
        },
        step);
  }
  return current;
}

}  // namespace pagedserve
