// AMX tiles, as matmul_amx.h describes. Tile registers: 0-3 accumulators (16 n x 16 m f32),
// 4-5 weight tiles (16 n x 32 k bf16, loaded straight from w), 6-7 x tiles (16 k-pairs x 16 m).
// A step covers up to 2 weight tiles x 2 x tiles, so every tile load feeds two multiplies.
#pragma GCC target("amx-tile,amx-bf16,avx512f,avx512bw,avx512vl,avx512bf16")
// GCC 12's AVX-512 intrinsics start from _mm512_undefined_*(), which its own flow analysis then
// reports as uninitialised (a known false positive).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include "kernels/cpu/matmul_amx.h"

#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cassert>
#include <cstdlib>
#include <algorithm>
#include <cstring>

#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/transpose_avx512.h"

namespace pagedserve {
namespace {

// x ~= sum of this many bf16 terms. One: the matmul contract rounds x to bf16 for bf16 weights
// (matmul.h), so one term is exact. (Before that contract, three kept x's f32 mantissa.) The
// packing keeps the split loop so a term count can still be measured.
constexpr int kSplits = 1;

constexpr long kArchRequestXcompPerm = 0x1023;  // arch_prctl: ask for an extended state component
constexpr long kXfeatureXtiledata = 18;         // the AMX tile data state

struct alignas(64) TileConfig {
  std::uint8_t palette_id;
  std::uint8_t start_row;
  std::uint8_t reserved[14];
  std::uint16_t bytes_per_row[16];
  std::uint8_t rows[16];
};

// Every tile in use is 16 rows of 64 bytes: 16 f32, 32 bf16 or 16 bf16 pairs.
void load_tile_config() {
  TileConfig config;
  std::memset(&config, 0, sizeof(config));
  config.palette_id = 1;
  for (int tile = 0; tile < 8; ++tile) {
    config.bytes_per_row[tile] = 64;
    config.rows[tile] = 16;
  }
  _tile_loadconfig(&config);
}

// The bf16 nearest to each lane (ties to even), returned widened back to f32.
__m512 round_to_bf16(__m512 value) {
  const __m512i bits = _mm512_castps_si512(value);
  const __m512i odd = _mm512_and_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(1));
  const __m512i rounded = _mm512_add_epi32(bits, _mm512_add_epi32(odd, _mm512_set1_epi32(0x7FFF)));
  return _mm512_castsi512_ps(_mm512_and_si512(rounded, _mm512_set1_epi32(static_cast<int>(0xFFFF0000u))));
}

// The 16 pairs (low[0], low[1]), ..., (high[14], high[15]) of 32 consecutive values, as bf16 dwords.
__m512i pairs_of(__m512 low, __m512 high) { return (__m512i)_mm512_cvtne2ps_pbh(high, low); }

// While the first x block is multiplied with one group of weight rows, the next group (one
// contiguous range of memory) is prefetched into L2, a slice per k step, in address order. The
// tile loads themselves read 16-32 rows at a stride of k * 2 bytes: too many streams for the
// hardware prefetcher to keep DRAM busy when few x rows make the step memory-bound.
void prefetch_lines(const std::uint16_t* begin, std::int64_t lines) {
  const char* p = reinterpret_cast<const char*>(begin);
  for (std::int64_t line = 0; line < lines; ++line) _mm_prefetch(p + line * 64, _MM_HINT_T1);
}

template <int Tiles, int XTiles>
void multiply_step(const std::uint16_t* w_rows, std::int64_t w_stride_bytes, const std::uint16_t* x_panel,
                   std::int64_t panel_elements, std::int64_t split_elements) {
  _tile_loadd(4, w_rows, w_stride_bytes);
  if constexpr (Tiles == 2) _tile_loadd(5, reinterpret_cast<const char*>(w_rows) + 16 * w_stride_bytes, w_stride_bytes);
  for (int split = 0; split < kSplits; ++split) {
    const std::uint16_t* x_tile = x_panel + split * split_elements;
    _tile_loadd(6, x_tile, 64);
    if constexpr (XTiles == 2) _tile_loadd(7, x_tile + panel_elements, 64);
    _tile_dpbf16ps(0, 4, 6);
    if constexpr (XTiles == 2) _tile_dpbf16ps(1, 4, 7);
    if constexpr (Tiles == 2) _tile_dpbf16ps(2, 5, 6);
    if constexpr (Tiles == 2 && XTiles == 2) _tile_dpbf16ps(3, 5, 7);
  }
}

// Accumulator tile (16 n x 16 m) -> y[m0 + j, n0 + i] for the m rows that exist.
void store_transposed(const float* tile,  // [16 n, 16 m]
                      std::int64_t rows_valid, float* y, std::int64_t ldy) {
  for (std::int64_t j = 0; j < rows_valid; ++j) {
    const __m512i index = _mm512_add_epi32(_mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                                              _mm512_set1_epi32(16)),
                                           _mm512_set1_epi32(static_cast<int>(j)));
    _mm512_storeu_ps(y + j * ldy, _mm512_i32gather_ps(index, tile, 4));
  }
}

// The tile instructions take the register number as an immediate.
void store_accumulator(int accumulator, float* tile) {
  switch (accumulator) {
    case 0: _tile_stored(0, tile, 64); break;
    case 1: _tile_stored(1, tile, 64); break;
    case 2: _tile_stored(2, tile, 64); break;
    default: _tile_stored(3, tile, 64); break;
  }
}

template <int Tiles, int XTiles>
void tile_block(const std::uint16_t* packed, std::int64_t m, std::int64_t k, std::int64_t num_blocks,
                const std::uint16_t* w, std::int64_t n0, std::int64_t block,
                const std::uint16_t* next_rows,  // the weight rows to prefetch, or nullptr
                std::int64_t next_lines, float* y, std::int64_t ldy) {
  const std::int64_t panel_elements = 16 * k;
  const std::int64_t split_elements = num_blocks * panel_elements;
  const std::uint16_t* x_panel = packed + block * panel_elements;
  const std::uint16_t* w_rows = w + n0 * k;
  const std::int64_t w_stride_bytes = k * 2;
  _tile_zero(0);
  if constexpr (XTiles == 2) _tile_zero(1);
  if constexpr (Tiles == 2) _tile_zero(2);
  if constexpr (Tiles == 2 && XTiles == 2) _tile_zero(3);
  const std::int64_t steps = k / 32;
  const std::int64_t lines_per_step = (next_lines + steps - 1) / steps;
  for (std::int64_t kk = 0; kk < k; kk += 32) {
    if (next_rows != nullptr) {
      const std::int64_t first = kk / 32 * lines_per_step;
      const std::int64_t count = first + lines_per_step <= next_lines ? lines_per_step : next_lines - first;
      if (count > 0) prefetch_lines(next_rows + first * 32, count);
    }
    multiply_step<Tiles, XTiles>(w_rows + kk, w_stride_bytes, x_panel + kk * 16, panel_elements, split_elements);
  }
  alignas(64) float tile[16 * 16];
  auto flush = [&](int accumulator, std::int64_t n, std::int64_t x_block) {
    const std::int64_t m0 = x_block * kAmxRowsPerBlock;
    const std::int64_t rows_valid = m - m0 < kAmxRowsPerBlock ? m - m0 : kAmxRowsPerBlock;
    store_accumulator(accumulator, tile);
    store_transposed(tile, rows_valid, y + m0 * ldy + n, ldy);
  };
  flush(0, n0, block);
  if constexpr (XTiles == 2) flush(1, n0, block + 1);
  if constexpr (Tiles == 2) flush(2, n0 + 16, block);
  if constexpr (Tiles == 2 && XTiles == 2) flush(3, n0 + 16, block + 1);
}

template <int Tiles>
void all_x_blocks(const std::uint16_t* packed, std::int64_t m, std::int64_t k, const std::uint16_t* w,
                  std::int64_t n0, std::int64_t next_rows, float* y, std::int64_t ldy) {
  const std::int64_t num_blocks = (m + kAmxRowsPerBlock - 1) / kAmxRowsPerBlock;
  const std::uint16_t* next = next_rows > 0 ? w + (n0 + 16 * Tiles) * k : nullptr;
  const std::int64_t next_lines = next_rows * k * 2 / 64;
  std::int64_t block = 0;
  for (; block + 2 <= num_blocks; block += 2) {
    tile_block<Tiles, 2>(packed, m, k, num_blocks, w, n0, block, block == 0 ? next : nullptr, next_lines, y, ldy);
  }
  if (block < num_blocks) {
    tile_block<Tiles, 1>(packed, m, k, num_blocks, w, n0, block, block == 0 ? next : nullptr, next_lines, y, ldy);
  }
}

bool ask_for_tile_state() {
  if (const char* off = std::getenv("PAGEDSERVE_NO_AMX"); off != nullptr && std::strcmp(off, "1") == 0) return false;
  if (!cpu_has_amx_bf16() || !__builtin_cpu_supports("avx512bf16")) {
    return false;
  }
  return syscall(SYS_arch_prctl, kArchRequestXcompPerm, kXfeatureXtiledata) == 0;
}

}  // namespace

bool amx_bf16_usable() noexcept {
  static const bool usable = ask_for_tile_state();
  return usable;
}

std::size_t amx_packed_x_elements(std::int64_t m, std::int64_t k) {
  const std::int64_t num_blocks = (m + kAmxRowsPerBlock - 1) / kAmxRowsPerBlock;
  return static_cast<std::size_t>(kSplits * num_blocks * kAmxRowsPerBlock * k);
}

void amx_pack_x_block(const float* x, std::int64_t m, std::int64_t ldx, std::int64_t k, std::int64_t block,
                      std::uint16_t* packed) {
  assert(k % 32 == 0);
  const std::int64_t num_blocks = (m + kAmxRowsPerBlock - 1) / kAmxRowsPerBlock;
  const std::int64_t panel_elements = 16 * k;
  const std::int64_t split_elements = num_blocks * panel_elements;
  auto* panel = reinterpret_cast<std::uint32_t*>(packed + block * panel_elements);
  for (std::int64_t kk = 0; kk < k; kk += 32) {
    // terms[split][row]: the 16 bf16 pairs of this row's 32 columns; transposed, pair p of every
    // row makes row p of the panel's step (16 rows' dwords, 64 bytes).
    __m512i terms[kSplits][kAmxRowsPerBlock];
    for (std::int64_t row = 0; row < kAmxRowsPerBlock; ++row) {
      const std::int64_t i = block * kAmxRowsPerBlock + row;
      if (i >= m) {
        for (auto& split_terms : terms) split_terms[row] = _mm512_setzero_si512();
        continue;
      }
      __m512 rest_low = _mm512_loadu_ps(x + i * ldx + kk);
      __m512 rest_high = _mm512_loadu_ps(x + i * ldx + kk + 16);
      for (int split = 0; split + 1 < kSplits; ++split) {
        const __m512 low = round_to_bf16(rest_low);
        const __m512 high = round_to_bf16(rest_high);
        terms[split][row] = pairs_of(low, high);
        rest_low = _mm512_sub_ps(rest_low, low);
        rest_high = _mm512_sub_ps(rest_high, high);
      }
      terms[kSplits - 1][row] = pairs_of(rest_low, rest_high);
    }
    for (int split = 0; split < kSplits; ++split) {
      transpose_16x16(terms[split]);
      std::uint32_t* step = panel + split * split_elements / 2 + kk * 8;
      for (int pair = 0; pair < 16; ++pair) _mm512_storeu_si512(step + pair * 16, terms[split][pair]);
    }
  }
}

void amx_rows(const std::uint16_t* packed, std::int64_t m, std::int64_t k, const std::uint16_t* w,
              std::int64_t n_begin, std::int64_t n_end, float* y, std::int64_t ldy) {
  assert(k % 32 == 0 && (n_end - n_begin) % 16 == 0);
  load_tile_config();
  std::int64_t n = n_begin;
  for (; n + 32 <= n_end; n += 32) all_x_blocks<2>(packed, m, k, w, n, std::min<std::int64_t>(32, n_end - n - 32), y, ldy);
  if (n < n_end) all_x_blocks<1>(packed, m, k, w, n, 0, y, ldy);
  _tile_release();
}

}  // namespace pagedserve
