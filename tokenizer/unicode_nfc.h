// Unicode Normalization Form C (canonical decomposition, then canonical composition), used by
// tokenizers whose tokenizer.json asks for an NFC normalizer (Qwen2/Qwen3).
// Pure function; any thread may call it.
#pragma once

#include <string>
#include <string_view>

namespace pagedserve {

// `text` is valid UTF-8. Text with no code point at or above U+0300 is returned unchanged
// without table lookups (nothing below U+0300 decomposes or combines with what precedes it).
std::string nfc_normalize(std::string_view text);

}  // namespace pagedserve
