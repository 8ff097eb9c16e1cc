#include "kernels/cpu/matmul.h"

#include <cblas.h>

#include <algorithm>
#include <cassert>
#include <mutex>

#include "core/half.h"
#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/matmul_amx.h"
#include "kernels/cpu/matmul_avx2.h"
#include "kernels/cpu/kernel_override.h"
#include "kernels/cpu/matmul_avx512.h"
#include "kernels/cpu/matmul_avx512bf16.h"
#include "kernels/cpu/matmul_panel_avx512.h"
#include "kernels/cpu/part_ranges.h"
#include "kernels/cpu/row_partition.h"

namespace pagedserve {
namespace {

// Rows of W per sgemm block: large enough that OpenBLAS amortises packing x, small enough that the
// f32 copy of the block (kSgemmBlockRows * k floats) stays in L2.
constexpr std::int64_t kSgemmBlockRows = 128;

// Up to this many rows the on-the-fly dot kernel wins; above it converting W blocks and calling
// sgemm does. bench/cpu/matmul_cpu.cpp on Qwen2.5-0.5B layer shapes, 2 threads: dot ahead of sgemm
// at every M <= 16 in each run and at M = 32 in the quietest one, sgemm ahead at M = 64
// (bench/RESULTS.md; the machine was loaded, so the exact crossover is not pinned down).
constexpr std::int64_t kMaxDotRows = 32;

// From this many rows AMX tiles beat the dot kernel. One row stays on the dot kernel (it reads at
// ~0.9 of the bandwidth floor). At 2-4 rows the matmul bench measured a tie, but the model's
// batch-4 decode measured 57.5 / 48.6 tok/s with AMX against 47.6 / 45.2 on the dot kernel (back
// to back, bench/RESULTS.md), so AMX from 2.
constexpr std::int64_t kMinAmxRows = 2;

// Parts of the weight rows per matmul (row_partition.h): the same number per thread, as many as
// keep them at least kMinPartRows rows, at most kMaxPartsPerThread.
constexpr std::int64_t kMinPartRows = 48;
constexpr std::int64_t kMaxPartsPerThread = 8;

// Rows of x packed for AMX at a time: bounds the workspace (3 bf16 terms of 256 rows x k) whatever
// the token budget; each pass streams the weights once more, cheap next to 256 rows of compute.
constexpr std::int64_t kAmxRowsPerPass = 256;

// Bytes of bf16 x rows one pass of the AVX512_BF16 path keeps hot (half of a 1 MiB L2).
constexpr std::int64_t kBf16PassBytes = 512 * 1024;

// dst[:k] = x[:k] rounded to bf16 (matmul.h), kept as f32 values.
void round_row_to_bf16_values(const float* x, std::int64_t k, float* dst) {
  for (std::int64_t kk = 0; kk < k; ++kk) dst[kk] = to_float(to_bf16(x[kk]));
}

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
        for (int lane = 0; lane < 8; ++lane)
          partial[lane] += x_row[kk + lane] * load_as_float(w_row[kk + lane]);
      }
      float sum = 0.0f;
      for (float p : partial) sum += p;
      for (; kk < k; ++kk) sum += x_row[kk] * load_as_float(w_row[kk]);
      y[i * ldy + n] = sum;
    }
  }
}

enum class Isa { portable, avx2, avx512 };

// AVX-512 wherever the CPU has it: at 1 row, at 2-4 rows (a weight row streamed for every row of
// x, two accumulators per row) and above (weights widened once, 6 x 4 register tile) it measured
// ahead of AVX2 (bench/RESULTS.md). On AMD family 19h the AVX2 kernels measured ahead at every M
// (cpu_features.h), so AVX-512 only when forced (dot_avx512 override).
Isa choose_isa(MatmulPath path) {
  if (path == MatmulPath::dot_portable || !cpu_has_avx2_fma_f16c()) return Isa::portable;
  if (path == MatmulPath::dot_avx2 || !cpu_has_avx512()) return Isa::avx2;
  if (path == MatmulPath::dot_avx512) return Isa::avx512;
  static const bool prefer_avx2 = cpu_is_amd_family_19h();
  if (path == MatmulPath::dot_simd && prefer_avx2) return Isa::avx2;
  return Isa::avx512;
}

// Rows of x from which the bf16-pair panel matmul beats the AVX512_BF16 dot kernel (measured,
// bench/RESULTS.md).
constexpr std::int64_t kMinPanelRowsBf16 = 32;

MatmulPath forced_path(CpuKernelOverride forced) {
  switch (forced) {
    case CpuKernelOverride::portable: return MatmulPath::dot_portable;
    case CpuKernelOverride::avx2: return MatmulPath::dot_avx2;
    case CpuKernelOverride::avx512: return MatmulPath::dot_avx512;
    case CpuKernelOverride::panel: return MatmulPath::panel_simd;
    case CpuKernelOverride::avx512bf16: return MatmulPath::dot_avx512bf16;
    case CpuKernelOverride::amx: return MatmulPath::amx;
    case CpuKernelOverride::sgemm: return MatmulPath::sgemm_blocks;
    case CpuKernelOverride::none: break;
  }
  return MatmulPath::automatic;
}

// The path one call runs: `requested` unless it is automatic (then PAGEDSERVE_CPU_KERNEL, then by
// M as measured) or the CPU / the operands cannot run it (then as automatic).
MatmulPath resolve_path(MatmulPath requested, std::int64_t m, bool bf16_weights, bool f32_weights, bool amx_fits) {
  MatmulPath path = requested;
  if (path == MatmulPath::automatic) path = forced_path(cpu_kernel_override());
  if (path == MatmulPath::amx && !amx_fits) path = MatmulPath::automatic;
  if (path == MatmulPath::dot_avx512bf16 && !(bf16_weights && cpu_has_avx512_bf16())) path = MatmulPath::automatic;
  if (path == MatmulPath::panel_simd && !cpu_has_avx512()) path = MatmulPath::automatic;
  if (path != MatmulPath::automatic) return path;
  if (f32_weights) return MatmulPath::dot_avx2;  // f32: one kernel at every M (matmul.h)
  if (amx_fits && m >= kMinAmxRows) return MatmulPath::amx;
  if (bf16_weights && cpu_has_avx512_bf16()) return m >= kMinPanelRowsBf16 ? MatmulPath::panel_simd : MatmulPath::dot_avx512bf16;
  if (m <= kMaxDotRows) return MatmulPath::dot_simd;
  return cpu_has_avx512() ? MatmulPath::panel_simd : MatmulPath::sgemm_blocks;
}

// The parts matmul_group cuts its targets' weight rows into on `path` (row_partition.h): of at
// most kSgemmBlockRows rows for sgemm (its per-thread f32 tile), else the same number per thread;
// AMX parts start on whole pairs of 16-row weight tiles, panel parts on whole panels.
RowPartition partition_rows(MatmulPath path, const std::int64_t* rows_of, int num_targets, int threads) {
  std::int64_t total_n = 0;
  for (int t = 0; t < num_targets; ++t) total_n += rows_of[t];
  const std::int64_t align = path == MatmulPath::amx || path == MatmulPath::panel_simd ? 32 : 1;
  const std::int64_t wanted_parts = path == MatmulPath::sgemm_blocks
                                        ? (total_n + kSgemmBlockRows - 1) / kSgemmBlockRows
                                        : balanced_parts(total_n, threads, kMinPartRows, kMaxPartsPerThread);
  return RowPartition(rows_of, num_targets, wanted_parts, align);
}

bool amx_shape_fits(bool bf16_weights, std::int64_t k) { return bf16_weights && k % 32 == 0 && amx_bf16_usable(); }

void dot_rows(Isa isa, const float* x, std::int64_t m, std::int64_t ldx, std::int64_t k, const TensorView& w,
              std::int64_t n_begin, std::int64_t n_end, float* y, std::int64_t ldy) {
  if (isa == Isa::avx512) {
    dot_rows_avx512(x, m, ldx, k, w.data(), w.dtype(), n_begin, n_end, y, ldy);
    return;
  }
  if (isa == Isa::avx2) {
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
  static const bool has =
      __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && cpu_has_f16c();
  return has;
}

std::size_t matmul_workspace_floats(std::int64_t max_m, std::int64_t k, int num_threads) {
  const std::size_t sgemm_tiles = static_cast<std::size_t>(num_threads) * static_cast<std::size_t>(kSgemmBlockRows * k);
  const std::size_t packed_x = (amx_packed_x_elements(std::min(max_m, kAmxRowsPerPass), k) + 1) / 2;
  const std::size_t rounded_x = static_cast<std::size_t>(max_m * k);
  return rounded_x + std::max(sgemm_tiles, packed_x);
}

RowPartition matmul_partition(std::int64_t m, std::initializer_list<TensorView> weights, int threads) {
  assert(m > 0 && weights.size() > 0 && weights.size() <= static_cast<std::size_t>(RowPartition::kMaxTargets));
  const TensorView& first = *weights.begin();
  const bool bf16_weights = first.dtype() == DType::bf16;
  const MatmulPath path = resolve_path(MatmulPath::automatic, m, bf16_weights, first.dtype() == DType::f32,
                                       amx_shape_fits(bf16_weights, first.size(1)));
  std::int64_t rows_of[RowPartition::kMaxTargets];
  int num_targets = 0;
  for (const TensorView& w : weights) rows_of[num_targets++] = w.size(0);
  return partition_rows(path, rows_of, num_targets, threads);
}

void matmul(const TensorView& x, const TensorView& w, const TensorView& bias, const TensorView& y,
            const TensorView& workspace, ThreadPool& pool, MatmulPath path) {
  matmul_group(x, {MatmulTarget{w, bias, y}}, workspace, pool, path);
}

void matmul_group(const TensorView& x, std::initializer_list<MatmulTarget> targets,
                  const TensorView& workspace, ThreadPool& pool, MatmulPath requested_path) {
  const std::int64_t m = x.size(0);
  const std::int64_t k = x.size(1);
  assert(x.dtype() == DType::f32 && x.stride(1) == 1 && targets.size() > 0);
  if (m == 0) return;
  const DType w_dtype = targets.begin()->w.dtype();
  assert(std::all_of(targets.begin(), targets.end(), [&](const MatmulTarget& t) { return t.w.dtype() == w_dtype; }));
  const bool bf16_weights = w_dtype == DType::bf16;
  const bool amx_fits = amx_shape_fits(bf16_weights, k) &&
                        2 * (static_cast<std::size_t>(workspace.numel()) - static_cast<std::size_t>(m * k)) >=
                            amx_packed_x_elements(std::min(m, kAmxRowsPerPass), k);
  const MatmulPath path = resolve_path(requested_path, m, bf16_weights, w_dtype == DType::f32, amx_fits);

  // x as the kernels read it. For bf16 weights it is rounded to bf16 first (matmul.h): bf16 bits
  // for the AVX512_BF16 kernel, bf16 values kept as f32 for the others (AMX packs them, and its
  // rows past the last whole tile go through the dot kernel). The rest of the workspace is the
  // paths' own scratch.
  const float* xp = x.data_as<const float>();
  std::int64_t ldx = x.stride(0);
  // The panel path multiplies bf16 pairs where the CPU can (k even), else widens to f32.
  const bool pair_panel = path == MatmulPath::panel_simd && bf16_weights && cpu_has_avx512_bf16() && k % 2 == 0;
  const std::uint16_t* x_bf16 = nullptr;  // [m, k], AVX512_BF16 path only
  float* scratch = workspace.data_as<float>();
  if (bf16_weights) {
    assert(static_cast<std::size_t>(workspace.numel()) >= static_cast<std::size_t>(m * k));
    if (path == MatmulPath::dot_avx512bf16 || pair_panel) {
      auto* rounded = reinterpret_cast<std::uint16_t*>(scratch);
      pool.parallel_for(m, [&](std::int64_t i) { round_row_to_bf16_avx512bf16(xp + i * ldx, k, rounded + i * k); });
      x_bf16 = rounded;
    } else {
      float* rounded = scratch;
      const float* source = xp;
      const std::int64_t source_ld = ldx;
      pool.parallel_for(m, [&](std::int64_t i) { round_row_to_bf16_values(source + i * source_ld, k, rounded + i * k); });
      xp = rounded;
      ldx = k;
    }
    scratch += m * k;
  }
  const Isa isa = choose_isa(path == MatmulPath::amx ? MatmulPath::dot_simd : path);
  const bool simd = isa != Isa::portable;

  // The weight rows of every target, cut into parts the pool hands out (partition_rows).
  constexpr int kMaxTargets = RowPartition::kMaxTargets;
  assert(targets.size() <= static_cast<std::size_t>(kMaxTargets));
  const MatmulTarget* target_of[kMaxTargets];
  std::int64_t rows_of[kMaxTargets];
  int num_targets = 0;
  std::int64_t total_n = 0;
  for (const MatmulTarget& t : targets) {
    const std::int64_t n = t.w.size(0);
    assert(t.w.size(1) == k && t.w.is_contiguous() && t.y.size(0) == m && t.y.size(1) == n &&
           t.y.stride(1) == 1);
    target_of[num_targets] = &t;
    rows_of[num_targets++] = n;
    total_n += n;
  }
  if (total_n == 0) return;
  const RowPartition partition = partition_rows(path, rows_of, num_targets, pool.size());
  // body(target, n_begin, n_end) for each segment of part b.
  auto for_each_segment = [&](std::int64_t b, auto&& body) {
    RowSegment segments[kMaxTargets];
    const int count = partition.segments(b, segments);
    for (int s = 0; s < count; ++s) body(*target_of[segments[s].target], segments[s].n_begin, segments[s].n_end);
  };
  // One task per pool thread, each taking parts as part_ranges.h hands them:
  // body(task, target, n_begin, n_end) for each segment of every part it takes.
  auto run_segments = [&](auto&& body) {
    PartRanges ranges(partition.parts(), pool.size());
    pool.parallel_for(pool.size(), [&](std::int64_t task) {
      const int owner = static_cast<int>(task);
      for (std::int64_t b = ranges.take(owner); b >= 0; b = ranges.take(owner)) {
        for_each_segment(b, [&](const MatmulTarget& t, std::int64_t n_begin, std::int64_t n_end) {
          body(task, t, n_begin, n_end);
        });
      }
    });
  };

  if (path == MatmulPath::amx) {
    auto* packed = reinterpret_cast<std::uint16_t*>(scratch);
    for (std::int64_t pass_begin = 0; pass_begin < m; pass_begin += kAmxRowsPerPass) {
      const std::int64_t rows = std::min(kAmxRowsPerPass, m - pass_begin);
      const float* x_pass = xp + pass_begin * ldx;
      const std::int64_t num_x_blocks = (rows + kAmxRowsPerBlock - 1) / kAmxRowsPerBlock;
      pool.parallel_for(num_x_blocks, [&](std::int64_t b) { amx_pack_x_block(x_pass, rows, ldx, k, b, packed); });
      run_segments([&](std::int64_t, const MatmulTarget& t, std::int64_t n_begin, std::int64_t n_end) {
        const std::int64_t ldy = t.y.stride(0);
        float* yp = t.y.data_as<float>() + pass_begin * ldy;
        const std::int64_t tiled_end = n_begin + (n_end - n_begin) / 16 * 16;
        amx_rows(packed, rows, k, t.w.data_as<const std::uint16_t>(), n_begin, tiled_end, yp, ldy);
        // Weight rows past the last whole tile (a target's n % 16) go through the dot kernel.
        if (tiled_end < n_end) dot_rows(isa, x_pass, rows, ldx, k, t.w, tiled_end, n_end, yp, ldy);
        if (t.bias.data() != nullptr) add_bias(t.bias.data_as<const float>(), rows, n_begin, n_end, yp, ldy);
      });
    }
    return;
  }

  // Rows [row_begin, row_begin + rows) against every part of the weight rows (run_segments):
  // kernel(target, n_begin, n_end, row_begin, rows, its y rows, ldy) per segment, then the bias.
  auto run_parts = [&](std::int64_t row_begin, std::int64_t rows, auto kernel) {
    run_segments([&](std::int64_t, const MatmulTarget& t, std::int64_t n_begin, std::int64_t n_end) {
      const std::int64_t ldy = t.y.stride(0);
      float* yp = t.y.data_as<float>() + row_begin * ldy;
      kernel(t, n_begin, n_end, row_begin, rows, yp, ldy);
      if (t.bias.data() != nullptr) add_bias(t.bias.data_as<const float>(), rows, n_begin, n_end, yp, ldy);
    });
  };

  if (path == MatmulPath::panel_simd) {
    run_parts(0, m, [&](const MatmulTarget& t, std::int64_t n_begin, std::int64_t n_end, std::int64_t, std::int64_t,
                         float* yp, std::int64_t ldy) {
      if (pair_panel) {
        panel_rows_avx512bf16(x_bf16, m, k, t.w.data_as<const std::uint16_t>(), n_begin, n_end, yp, ldy);
      } else {
        panel_rows_avx512(xp, m, ldx, k, t.w.data(), t.w.dtype(), n_begin, n_end, yp, ldy);
      }
    });
    return;
  }

  if (path == MatmulPath::dot_avx512bf16) {
    // Rows of x per pass: as many as keep their bf16 copy within ~half of L2 while the weight
    // blocks stream past them (at least one register tile of rows).
    const std::int64_t rows_per_pass = std::max<std::int64_t>(6, kBf16PassBytes / (2 * k) / 6 * 6);
    for (std::int64_t pass_begin = 0; pass_begin < m; pass_begin += rows_per_pass) {
      run_parts(pass_begin, std::min(rows_per_pass, m - pass_begin),
                 [&](const MatmulTarget& t, std::int64_t n_begin, std::int64_t n_end, std::int64_t row_begin,
                     std::int64_t rows, float* yp, std::int64_t ldy) {
                   dot_rows_avx512bf16(x_bf16 + row_begin * k, rows, k, t.w.data_as<const std::uint16_t>(),
                                       n_begin, n_end, yp, ldy);
                 });
    }
    return;
  }

  if (path != MatmulPath::sgemm_blocks) {
    run_parts(0, m, [&](const MatmulTarget& t, std::int64_t n_begin, std::int64_t n_end, std::int64_t, std::int64_t,
                         float* yp, std::int64_t ldy) { dot_rows(isa, xp, m, ldx, k, t.w, n_begin, n_end, yp, ldy); });
    return;
  }

  use_single_threaded_blas();
  // Each task owns one slice of the workspace.
  run_segments([&](std::int64_t worker, const MatmulTarget& t, std::int64_t n_begin, std::int64_t n_end) {
    const float* w_block = nullptr;
    if (t.w.dtype() == DType::f32) {
      w_block = t.w.data_as<const float>() + n_begin * k;
    } else {
      float* tile = scratch + worker * kSgemmBlockRows * k;  // [<= kSgemmBlockRows, k]
      convert_rows_to_f32(simd, t.w, n_begin, n_end, k, tile);
      w_block = tile;
    }
    float* yp = t.y.data_as<float>();
    const std::int64_t ldy = t.y.stride(0);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(m), static_cast<int>(n_end - n_begin),
                static_cast<int>(k), 1.0f, xp, static_cast<int>(ldx), w_block, static_cast<int>(k), 0.0f,
                yp + n_begin, static_cast<int>(ldy));
    if (t.bias.data() != nullptr) add_bias(t.bias.data_as<const float>(), m, n_begin, n_end, yp, ldy);
  });
}

}  // namespace pagedserve
