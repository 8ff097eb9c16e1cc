#include "kernels/cpu/matmul.h"

#include <cblas.h>

#include <algorithm>
#include <atomic>
#include <cassert>
#include <mutex>

#include "core/half.h"
#include "kernels/cpu/matmul_avx2.h"

namespace pagedserve {
namespace {

// Rows of W per sgemm block: large enough that OpenBLAS amortises packing x, small enough that the
// f32 copy of the block (kSgemmBlockRows * k floats) stays in L2.
constexpr std::int64_t kSgemmBlockRows = 128;

// Up to this many rows the on-the-fly dot kernel wins; above it converting W blocks and calling
// sgemm does (bench/cpu/matmul_cpu.cpp, bench/RESULTS.md).
constexpr std::int64_t kMaxDotRows = 8;

template <typename W>
void dot_rows_portable(const float* x, std::int64_t m, std::int64_t ldx, std::int64_t k, const W* w,
                       std::int64_t n_begin, std::int64_t n_end, float* y, std::int64_t ldy) {
  for (std::int64_t n = n_begin; n < n_end; ++n) {
    const W* w_row = w + n * k;
    for (std::int64_t i = 0; i < m; ++i) {
      const float* x_row = x + i * ldx;
      float partial[8] = {};
      std::int64_t kk = 0;
      for (; kk + 8 <= k; kk += 8) {
        for (int lane = 0; lane < 8; ++lane) partial[lane] += x_row[kk + lane] * load_as_float(w_row[kk + lane]);
      }
      float sum = 0.0f;
      for (float p : partial) sum += p;
      for (; kk < k; ++kk) sum += x_row[kk] * load_as_float(w_row[kk]);
      y[i * ldy + n] = sum;
    }
  }
}

void dot_rows(bool simd, const float* x, std::int64_t m, std::int64_t ldx, std::int64_t k, const TensorView& w,
              std::int64_t n_begin, std::int64_t n_end, float* y, std::int64_t ldy) {
  if (simd) {
    dot_rows_avx2(x, m, ldx, k, w.data(), w.dtype(), n_begin, n_end, y, ldy);
    return;
  }
  switch (w.dtype()) {
    case DType::bf16:
      dot_rows_portable(x, m, ldx, k, w.data_as<const bf16>(), n_begin, n_end, y, ldy);
      break;
    case DType::f16:
      dot_rows_portable(x, m, ldx, k, w.data_as<const f16>(), n_begin, n_end, y, ldy);
      break;
    default:
      dot_rows_portable(x, m, ldx, k, w.data_as<const float>(), n_begin, n_end, y, ldy);
      break;
  }
}

void convert_rows_to_f32(bool simd, const TensorView& w, std::int64_t row_begin, std::int64_t row_end,
                         std::int64_t k, float* dst) {
  const std::int64_t count = (row_end - row_begin) * k;
  const auto* src = static_cast<const std::uint16_t*>(w.data()) + row_begin * k;
  if (simd) {
    convert_to_f32_avx2(src, w.dtype(), count, dst);
    return;
  }
  if (w.dtype() == DType::bf16) {
    for (std::int64_t i = 0; i < count; ++i) dst[i] = to_float(bf16{src[i]});
  } else {
    for (std::int64_t i = 0; i < count; ++i) dst[i] = to_float(f16{src[i]});
  }
}

// OpenBLAS would otherwise start its own threads inside each of our pool's tasks.
void use_single_threaded_blas() {
  static std::once_flag once;
  std::call_once(once, [] { openblas_set_num_threads(1); });
}

void add_bias(const float* bias, std::int64_t m, std::int64_t n_begin, std::int64_t n_end, float* y,
              std::int64_t ldy) {
  for (std::int64_t i = 0; i < m; ++i)
    for (std::int64_t n = n_begin; n < n_end; ++n) y[i * ldy + n] += bias[n];
}

}  // namespace

bool cpu_has_avx2_fma_f16c() noexcept {
  static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                          __builtin_cpu_supports("f16c");
  return has;
}

std::size_t matmul_workspace_floats(std::int64_t k, int num_threads) {
  return static_cast<std::size_t>(num_threads) * static_cast<std::size_t>(kSgemmBlockRows * k);
}

void matmul(const TensorView& x, const TensorView& w, const TensorView& bias, const TensorView& y,
            const TensorView& workspace, ThreadPool& pool, MatmulPath path) {
  const std::int64_t m = x.size(0);
  const std::int64_t k = x.size(1);
  const std::int64_t n = w.size(0);
  assert(x.dtype() == DType::f32 && y.dtype() == DType::f32);
  assert(w.size(1) == k && w.is_contiguous() && y.size(0) == m && y.size(1) == n);
  assert(x.stride(1) == 1 && y.stride(1) == 1);
  if (m == 0 || n == 0) return;
  const float* xp = x.data_as<const float>();
  float* yp = y.data_as<float>();
  const std::int64_t ldx = x.stride(0);
  const std::int64_t ldy = y.stride(0);
  const float* bias_data = bias.data_as<const float>();

  if (path == MatmulPath::automatic) path = m <= kMaxDotRows ? MatmulPath::dot_simd : MatmulPath::sgemm_blocks;
  const bool simd = path != MatmulPath::dot_portable && cpu_has_avx2_fma_f16c();

  if (path != MatmulPath::sgemm_blocks) {
    // Several tasks per thread so a thread slowed by a neighbour process does not hold up the rest.
    const std::int64_t target_tasks = static_cast<std::int64_t>(pool.size()) * 8;
    const std::int64_t block = std::max<std::int64_t>(48, (n + target_tasks - 1) / target_tasks);
    const std::int64_t num_blocks = (n + block - 1) / block;
    pool.parallel_for(num_blocks, [&](std::int64_t b) {
      const std::int64_t n_begin = b * block;
      const std::int64_t n_end = std::min(n, n_begin + block);
      dot_rows(simd, xp, m, ldx, k, w, n_begin, n_end, yp, ldy);
      if (bias_data != nullptr) add_bias(bias_data, m, n_begin, n_end, yp, ldy);
    });
    return;
  }

  use_single_threaded_blas();
  const int num_workers = pool.size();
  assert(w.dtype() == DType::f32 ||
         workspace.numel() >= static_cast<std::int64_t>(matmul_workspace_floats(k, num_workers)));
  const std::int64_t num_blocks = (n + kSgemmBlockRows - 1) / kSgemmBlockRows;
  std::atomic<std::int64_t> next_block{0};
  // One task per worker, each owning one slice of the workspace; blocks are handed out dynamically.
  pool.parallel_for(num_workers, [&](std::int64_t worker) {
    float* tile = workspace.data() == nullptr ? nullptr : workspace.data_as<float>() + worker * kSgemmBlockRows * k;
    for (std::int64_t b = next_block.fetch_add(1); b < num_blocks; b = next_block.fetch_add(1)) {
      const std::int64_t n_begin = b * kSgemmBlockRows;
      const std::int64_t n_end = std::min(n, n_begin + kSgemmBlockRows);
      const float* w_block = nullptr;
      if (w.dtype() == DType::f32) {
        w_block = w.data_as<const float>() + n_begin * k;
      } else {
        convert_rows_to_f32(simd, w, n_begin, n_end, k, tile);
        w_block = tile;
      }
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(m), static_cast<int>(n_end - n_begin),
                  static_cast<int>(k), 1.0f, xp, static_cast<int>(ldx), w_block, static_cast<int>(k), 0.0f,
                  yp + n_begin, static_cast<int>(ldy));
      if (bias_data != nullptr) add_bias(bias_data, m, n_begin, n_end, yp, ldy);
    }
  });
}

}  // namespace pagedserve
