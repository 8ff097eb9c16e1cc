// Unicode data for NFC, generated into unicode_nfc_tables.cpp by unicode_nfc_tables_gen.py.
// Every table is sorted by its first field. Internal to unicode_nfc.cpp.
#pragma once

#include <cstddef>
#include <cstdint>

namespace pagedserve::nfc_tables {

struct CombiningClassRange {
  char32_t first, last;
  std::uint8_t combining_class;
};
struct Decomposition {
  char32_t code_point;
  std::uint16_t offset, length;  // into kDecompositionPool; the full canonical decomposition
};
struct Composition {
  char32_t first, second, composite;  // primary composites only
};
struct CodePointRange {
  char32_t first, last;
};

extern const CombiningClassRange kCombiningClasses[];
extern const std::size_t kCombiningClassesSize;
extern const Decomposition kDecompositions[];
extern const std::size_t kDecompositionsSize;
extern const char32_t kDecompositionPool[];
extern const std::size_t kDecompositionPoolSize;
extern const Composition kCompositions[];
extern const std::size_t kCompositionsSize;
// Characters that may combine with or reorder against what precedes them (non-zero class, the
// second half of a composition, or decomposing into such a start). Hangul jamo are handled in code.
extern const CodePointRange kNonBoundaryRanges[];
extern const std::size_t kNonBoundaryRangesSize;

}  // namespace pagedserve::nfc_tables
