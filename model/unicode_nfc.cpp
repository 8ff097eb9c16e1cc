#include "model/unicode_nfc.h"

namespace pagedserve {

std::string nfc_normalize(std::string_view text) {
  // TODO(tokenizer): composition tables.
  return std::string(text);
}

}  // namespace pagedserve
