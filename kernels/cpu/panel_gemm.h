// The loops of the panel matmul (matmul_panel_avx512.h), shared by its two forms: for each panel of
// 32 weight rows and each k chunk of it, pack the chunk, then run the 12 x 32 tile over every group
// of x rows. A Form supplies the element types, the chunk length and the two inner pieces:
//   Form::kChunkK                                    k per packed chunk
//   Form::pack(w, k, n0, rows, k0, kc, panel)        the chunk of rows [n0, n0 + rows), zero-padded
//   Form::tile<MR, First>(x, ldx, k0, kc, panel, y, ldy, mask_low, mask_high)
//                                                    y[0:MR, 0:32] (+)= x[0:MR, k0:k0+kc] * panel
// Header-only; include it after the including file's `#pragma GCC target`.
#pragma once

#include <immintrin.h>

#include <cstdint>

#include "kernels/cpu/row_groups.h"

namespace pagedserve {

inline constexpr int kPanelTileRows = 12;
inline constexpr int kPanelSmallTileRows = 8;

// Store masks of the panel's two 16-row halves for `rows` (<= 32) valid weight rows.
inline __mmask16 panel_half_mask(std::int64_t rows, int half) {
  const std::int64_t valid = rows - 16 * half;
  if (valid >= 16) return static_cast<__mmask16>(0xffff);
  if (valid <= 0) return 0;
  return static_cast<__mmask16>((1u << valid) - 1u);
}

template <typename Form>
void panel_gemm(const typename Form::XElement* x, std::int64_t m, std::int64_t ldx, std::int64_t k,
                const typename Form::WElement* w, std::int64_t n_begin, std::int64_t n_end, float* y,
                std::int64_t ldy) {
  alignas(64) typename Form::PanelElement panel[Form::kPanelElements];
  for (std::int64_t n0 = n_begin; n0 < n_end; n0 += 32) {
    const std::int64_t rows = n_end - n0 < 32 ? n_end - n0 : 32;
    const __mmask16 low = panel_half_mask(rows, 0), high = panel_half_mask(rows, 1);
    for (std::int64_t k0 = 0; k0 < k; k0 += Form::kChunkK) {
      const std::int64_t kc = k - k0 < Form::kChunkK ? k - k0 : Form::kChunkK;
      Form::pack(w, k, n0, rows, k0, kc, panel);
      auto run_tile = [&](auto group, std::int64_t i) {
        constexpr int kRows = decltype(group)::value;
        const auto* x_rows = x + i * ldx;
        float* y_rows = y + i * ldy + n0;
        if (k0 == 0) {
          Form::template tile<kRows, true>(x_rows, ldx, k0, kc, panel, y_rows, ldy, low, high);
        } else {
          Form::template tile<kRows, false>(x_rows, ldx, k0, kc, panel, y_rows, ldy, low, high);
        }
      };
      // Up to 16 rows in two even groups (8 + 8 keeps 16 accumulators busy; 12 + 4 leaves the
      // second tile short of independent FMAs).
      if (m <= 16) {
        for_row_groups<kPanelSmallTileRows>(m, run_tile);
      } else {
        for_row_groups<kPanelTileRows>(m, run_tile);
      }
    }
  }
}

}  // namespace pagedserve
