// A 16 x 16 transpose of 32-bit elements in AVX-512 registers, for the kernels that pack operands
// (AMX's x panels, the panel matmul's weight panels). Header-only; include it after the including
// file's `#pragma GCC target` names avx512f.
#pragma once

#include <immintrin.h>

namespace pagedserve {

// rows[i] dword j -> rows[j] dword i. Unpacks make 4 x 4 transposes inside each 128-bit lane
// (u[4b + c] lane L = column 4L + c of rows 4b..4b+3); two lane shuffles then gather, for
// column 4L + c, lane L of u[c], u[4 + c], u[8 + c], u[12 + c].
inline void transpose_16x16(__m512i rows[16]) {
  __m512i t[16];
  for (int a = 0; a < 8; ++a) {
    t[2 * a] = _mm512_unpacklo_epi32(rows[2 * a], rows[2 * a + 1]);
    t[2 * a + 1] = _mm512_unpackhi_epi32(rows[2 * a], rows[2 * a + 1]);
  }
  __m512i u[16];
  for (int b = 0; b < 4; ++b) {
    u[4 * b + 0] = _mm512_unpacklo_epi64(t[4 * b], t[4 * b + 2]);
    u[4 * b + 1] = _mm512_unpackhi_epi64(t[4 * b], t[4 * b + 2]);
    u[4 * b + 2] = _mm512_unpacklo_epi64(t[4 * b + 1], t[4 * b + 3]);
    u[4 * b + 3] = _mm512_unpackhi_epi64(t[4 * b + 1], t[4 * b + 3]);
  }
  for (int c = 0; c < 4; ++c) {
    const __m512i even_lanes_low = _mm512_shuffle_i32x4(u[c], u[4 + c], 0x88);
    const __m512i odd_lanes_low = _mm512_shuffle_i32x4(u[c], u[4 + c], 0xDD);
    const __m512i even_lanes_high = _mm512_shuffle_i32x4(u[8 + c], u[12 + c], 0x88);
    const __m512i odd_lanes_high = _mm512_shuffle_i32x4(u[8 + c], u[12 + c], 0xDD);
    rows[c] = _mm512_shuffle_i32x4(even_lanes_low, even_lanes_high, 0x88);
    rows[8 + c] = _mm512_shuffle_i32x4(even_lanes_low, even_lanes_high, 0xDD);
    rows[4 + c] = _mm512_shuffle_i32x4(odd_lanes_low, odd_lanes_high, 0x88);
    rows[12 + c] = _mm512_shuffle_i32x4(odd_lanes_low, odd_lanes_high, 0xDD);
  }
}

}  // namespace pagedserve
