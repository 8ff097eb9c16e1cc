#include "kernels/cpu/matmul.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <string>
#include <random>
#include <stdexcept>
#include <vector>

#include "core/buffer.h"
#include "core/half.h"
#include "kernels/cpu/kernel_override.h"
#include "kernels/cpu/matmul_amx.h"
#include "kernels/reference/matmul_reference.h"

namespace pagedserve {
namespace {

struct Shape {
  std::int64_t m, k, n;
};

// Fills `w` (of `dtype`) with values in [-1, 1] and returns them as f32 (after rounding to dtype),
// so the error bound can be computed from exact magnitudes.
std::vector<float> fill_weights(Buffer& w, DType dtype, std::int64_t count, std::mt19937& rng) {
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> values(static_cast<std::size_t>(count));
  for (std::int64_t i = 0; i < count; ++i) {
    const float v = dist(rng);
    switch (dtype) {
      case DType::bf16:
        static_cast<bf16*>(w.data())[i] = to_bf16(v);
        values[i] = to_float(to_bf16(v));
        break;
      case DType::f16:
        static_cast<f16*>(w.data())[i] = to_f16(v);
        values[i] = to_float(to_f16(v));
        break;
      default:
        static_cast<float*>(w.data())[i] = v;
        values[i] = v;
        break;
    }
  }
  return values;
}

void check_matmul(const Shape& s, DType w_dtype, MatmulPath path, bool with_bias, ThreadPool& pool,
                  std::mt19937& rng) {
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  Buffer x(static_cast<std::size_t>(s.m * s.k) * 4, Device::cpu);
  Buffer w(static_cast<std::size_t>(s.n * s.k) * dtype_size(w_dtype), Device::cpu);
  Buffer bias(static_cast<std::size_t>(s.n) * 4, Device::cpu);
  Buffer y(static_cast<std::size_t>(s.m * s.n) * 4, Device::cpu);
  Buffer expected(static_cast<std::size_t>(s.m * s.n) * 4, Device::cpu);
  Buffer workspace(matmul_workspace_floats(s.m, s.k, pool.size()) * 4, Device::cpu);
  auto* xp = static_cast<float*>(x.data());
  for (std::int64_t i = 0; i < s.m * s.k; ++i) xp[i] = dist(rng);
  const std::vector<float> wv = fill_weights(w, w_dtype, s.n * s.k, rng);
  for (std::int64_t i = 0; i < s.n; ++i) static_cast<float*>(bias.data())[i] = dist(rng);
  auto* yp = static_cast<float*>(y.data());
  for (std::int64_t i = 0; i < s.m * s.n; ++i) yp[i] = std::nanf("");  // every output must be written

  const TensorView x_view = x.view(DType::f32, {s.m, s.k});
  const TensorView w_view = w.view(w_dtype, {s.n, s.k});
  const TensorView bias_view = with_bias ? bias.view(DType::f32, {s.n}) : TensorView();
  const TensorView workspace_view =
      workspace.view(DType::f32, {static_cast<std::int64_t>(matmul_workspace_floats(s.m, s.k, pool.size()))});
  matmul(x_view, w_view, bias_view, y.view(DType::f32, {s.m, s.n}), workspace_view, pool, path);
  matmul_reference(x_view, w_view, bias_view, expected.view(DType::f32, {s.m, s.n}));

  const auto* ep = static_cast<const float*>(expected.data());
  for (std::int64_t i = 0; i < s.m; ++i) {
    for (std::int64_t j = 0; j < s.n; ++j) {
      double magnitude = 0;
      for (std::int64_t kk = 0; kk < s.k; ++kk) magnitude += std::fabs(xp[i * s.k + kk] * wv[j * s.k + kk]);
      const double tolerance = 2e-6 * magnitude + 1e-6;
      ASSERT_NEAR(yp[i * s.n + j], ep[i * s.n + j], tolerance)
          << "m=" << s.m << " k=" << s.k << " n=" << s.n << " dtype=" << dtype_name(w_dtype)
          << " path=" << static_cast<int>(path) << " at (" << i << ", " << j << ")";
    }
  }
}

TEST(Matmul, EveryPathAndDtypeMatchesReferenceOnOddShapes) {
  const unsigned seed = std::random_device{}();
  std::printf("seed %u\n", seed);
  std::mt19937 rng(seed);
  ThreadPool pool(3);
  // 2-4 rows with k past whole 32- and 16-wide steps (the streaming kernels' main loops and every
  // kind of tail: 16 + mask, mask alone, 8 + scalar, scalar alone).
  const Shape shapes[] = {{1, 1, 1},    {1, 7, 5},    {2, 8, 13},    {3, 13, 50},   {4, 64, 37},
                          {2, 93, 11},  {3, 58, 9},   {4, 121, 17},  {3, 37, 7},    {4, 40, 5},
                          {5, 100, 130}, {7, 200, 61}, {9, 96, 300}, {17, 33, 129}, {33, 257, 70}};
  for (const Shape& s : shapes) {
    for (DType dtype : {DType::bf16, DType::f16, DType::f32}) {
      for (MatmulPath path : {MatmulPath::automatic, MatmulPath::dot_portable, MatmulPath::dot_avx2,
                              MatmulPath::dot_simd, MatmulPath::dot_avx512, MatmulPath::sgemm_blocks,
                              MatmulPath::amx, MatmulPath::dot_avx512bf16, MatmulPath::panel_simd}) {
        check_matmul(s, dtype, path, /*with_bias=*/(s.n % 2) == 1, pool, rng);
      }
    }
  }
}

TEST(Matmul, LargeModelShapesOnBothPaths) {
  const unsigned seed = std::random_device{}();
  std::printf("seed %u\n", seed);
  std::mt19937 rng(seed);
  ThreadPool pool(2);
  for (MatmulPath path : {MatmulPath::dot_avx2, MatmulPath::dot_avx512, MatmulPath::sgemm_blocks, MatmulPath::amx,
                          MatmulPath::dot_avx512bf16, MatmulPath::panel_simd}) {
    check_matmul({6, 896, 1100}, DType::bf16, path, true, pool, rng);
    check_matmul({45, 4864, 200}, DType::bf16, path, false, pool, rng);
    check_matmul({300, 64, 70}, DType::bf16, path, true, pool, rng);  // two AMX passes of x
    // AMX k chunks: a group ending on a single weight tile, an odd number of x blocks
    check_matmul({40, 96, 48}, DType::bf16, path, false, pool, rng);
    check_matmul({70, 640, 272}, DType::bf16, path, true, pool, rng);
    check_matmul({20, 1000, 300}, DType::f16, path, false, pool, rng);
  }
}

// The AMX path falls back silently where it cannot run; on a CPU that has AMX it must run (a
// failed tile-state request would otherwise pass every test above on the slower paths).
TEST(Matmul, AmxRunsWhereTheCpuHasIt) {
  const bool cpu_has_amx = __builtin_cpu_supports("amx-tile") && __builtin_cpu_supports("amx-bf16") &&
                           __builtin_cpu_supports("avx512bf16");
  const char* off = std::getenv("PAGEDSERVE_NO_AMX");
  if (!cpu_has_amx || (off != nullptr && std::string(off) == "1")) GTEST_SKIP() << "no AMX here";
  EXPECT_TRUE(amx_bf16_usable());
}

TEST(MatmulGroup, EachTargetMatchesItsOwnReference) {
  const unsigned seed = std::random_device{}();
  std::printf("seed %u\n", seed);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  // 3 threads: parts spanning the targets' ends; 16: one small part per thread (row_partition.h).
  for (int threads : {3, 16}) {
    ThreadPool pool(threads);
    const std::int64_t k = 77;
    const std::int64_t ns[] = {130, 13, 300};
    for (std::int64_t m : {1, 5, 20}) {
      for (MatmulPath path : {MatmulPath::automatic, MatmulPath::dot_portable, MatmulPath::dot_avx2,
                              MatmulPath::sgemm_blocks, MatmulPath::amx, MatmulPath::dot_avx512bf16,
                              MatmulPath::panel_simd}) {
        std::vector<float> x(static_cast<std::size_t>(m * k));
        for (float& v : x) v = dist(rng);
        std::vector<std::vector<bf16>> w(3);
        std::vector<std::vector<float>> bias(3), y(3), expected(3);
        for (int t = 0; t < 3; ++t) {
          w[t].resize(static_cast<std::size_t>(ns[t] * k));
          for (bf16& v : w[t]) v = to_bf16(dist(rng));
          bias[t].resize(static_cast<std::size_t>(ns[t]));
          for (float& v : bias[t]) v = dist(rng);
          y[t].assign(static_cast<std::size_t>(m * ns[t]), std::nanf(""));
          expected[t].resize(y[t].size());
        }
        auto view = [&](int t, std::vector<float>& out) {
          return TensorView(out.data(), DType::f32, {m, ns[t]});
        };
        auto wv = [&](int t) { return TensorView(w[t].data(), DType::bf16, {ns[t], k}); };
        auto bv = [&](int t) { return TensorView(bias[t].data(), DType::f32, {ns[t]}); };
        std::vector<float> workspace(matmul_workspace_floats(m, k, pool.size()));
        const TensorView x_view(x.data(), DType::f32, {m, k});
        matmul_group(x_view,
                     {{wv(0), bv(0), view(0, y[0])},
                      {wv(1), TensorView(), view(1, y[1])},
                      {wv(2), bv(2), view(2, y[2])}},
                     TensorView(workspace.data(), DType::f32, {static_cast<std::int64_t>(workspace.size())}),
                     pool, path);
        matmul_reference(x_view, wv(0), bv(0), view(0, expected[0]));
        matmul_reference(x_view, wv(1), TensorView(), view(1, expected[1]));
        matmul_reference(x_view, wv(2), bv(2), view(2, expected[2]));
        for (int t = 0; t < 3; ++t) {
          for (std::size_t i = 0; i < y[t].size(); ++i) {
            ASSERT_NEAR(y[t][i], expected[t][i], 1e-4)
                << "target " << t << " m " << m << " path " << static_cast<int>(path) << " threads " << threads;
          }
        }
      }
    }
  }
}

constexpr MatmulPath kEveryPath[] = {MatmulPath::automatic, MatmulPath::dot_portable, MatmulPath::dot_avx2,
                                     MatmulPath::dot_simd,  MatmulPath::dot_avx512,   MatmulPath::sgemm_blocks,
                                     MatmulPath::amx,
                                     MatmulPath::dot_avx512bf16, MatmulPath::panel_simd};

// The contract of matmul.h: with bf16 weights x is rounded to bf16 first, on every path and at
// every batch shape. 1 + 2^-10 rounds to 1, so each output is exactly k (a path that kept x in f32
// answers k * (1 + 2^-10)).
TEST(Matmul, Bf16WeightsRoundXToBf16OnEveryPath) {
  ThreadPool pool(2);
  for (std::int64_t m : {1, 3, 7, 40}) {
    for (std::int64_t k : {1, 33, 64}) {
      const std::int64_t n = 19;
      std::vector<float> x(static_cast<std::size_t>(m * k), 1.0f + 1.0f / 1024);
      std::vector<bf16> w(static_cast<std::size_t>(n * k), to_bf16(1.0f));
      std::vector<float> workspace(matmul_workspace_floats(m, k, pool.size()));
      for (MatmulPath path : kEveryPath) {
        std::vector<float> y(static_cast<std::size_t>(m * n), std::nanf(""));
        matmul(TensorView(x.data(), DType::f32, {m, k}), TensorView(w.data(), DType::bf16, {n, k}), TensorView(),
               TensorView(y.data(), DType::f32, {m, n}),
               TensorView(workspace.data(), DType::f32, {static_cast<std::int64_t>(workspace.size())}), pool, path);
        for (float v : y) ASSERT_EQ(v, static_cast<float>(k)) << "m " << m << " k " << k << " path " << static_cast<int>(path);
      }
    }
  }
}

// x rows at a stride with NaN in the gaps, y rows at a stride with NaN in the gaps: no path reads
// past k in x or writes past n in y.
TEST(Matmul, StridedRowsNeverTouchTheGaps) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  ThreadPool pool(2);
  for (DType dtype : {DType::bf16, DType::f16, DType::f32}) {
    for (std::int64_t m : {1, 2, 3, 4, 5, 13, 45}) {
      const std::int64_t k = m <= 4 ? 61 : 64, n = 37, ldx = k + 7, ldy = n + 3;
      std::vector<float> x(static_cast<std::size_t>(m * ldx), std::nanf(""));
      for (std::int64_t i = 0; i < m; ++i)
        for (std::int64_t kk = 0; kk < k; ++kk) x[i * ldx + kk] = dist(rng);
      Buffer w(static_cast<std::size_t>(n * k) * dtype_size(dtype), Device::cpu);
      fill_weights(w, dtype, n * k, rng);
      std::vector<float> workspace(matmul_workspace_floats(m, k, pool.size()));
      std::vector<float> expected(static_cast<std::size_t>(m * ldy));
      const TensorView x_view = TensorView(x.data(), DType::f32, {m, ldx}).slice_columns(0, k);
      matmul_reference(x_view, w.view(dtype, {n, k}), TensorView(),
                       TensorView(expected.data(), DType::f32, {m, ldy}).slice_columns(0, n));
      for (MatmulPath path : kEveryPath) {
        std::vector<float> y(static_cast<std::size_t>(m * ldy), std::nanf(""));
        matmul(x_view, w.view(dtype, {n, k}), TensorView(), TensorView(y.data(), DType::f32, {m, ldy}).slice_columns(0, n),
               TensorView(workspace.data(), DType::f32, {static_cast<std::int64_t>(workspace.size())}), pool, path);
        for (std::int64_t i = 0; i < m; ++i) {
          for (std::int64_t j = 0; j < ldy; ++j) {
            const float v = y[i * ldy + j];
            if (j >= n) {
              ASSERT_TRUE(std::isnan(v)) << "wrote the gap at (" << i << ", " << j << ")";
            } else {
              ASSERT_NEAR(v, expected[i * ldy + j], 1e-4) << dtype_name(dtype) << " m " << m << " path "
                                                          << static_cast<int>(path) << " at (" << i << ", " << j << ")";
            }
          }
        }
      }
    }
  }
}

TEST(CpuKernelOverride, ParsesEveryNameAndRefusesOthers) {
  EXPECT_EQ(parse_cpu_kernel_override(nullptr), CpuKernelOverride::none);
  EXPECT_EQ(parse_cpu_kernel_override(""), CpuKernelOverride::none);
  EXPECT_EQ(parse_cpu_kernel_override("auto"), CpuKernelOverride::none);
  EXPECT_EQ(parse_cpu_kernel_override("portable"), CpuKernelOverride::portable);
  EXPECT_EQ(parse_cpu_kernel_override("avx2"), CpuKernelOverride::avx2);
  EXPECT_EQ(parse_cpu_kernel_override("avx512"), CpuKernelOverride::avx512);
  EXPECT_EQ(parse_cpu_kernel_override("avx512bf16"), CpuKernelOverride::avx512bf16);
  EXPECT_EQ(parse_cpu_kernel_override("panel"), CpuKernelOverride::panel);
  EXPECT_EQ(parse_cpu_kernel_override("amx"), CpuKernelOverride::amx);
  EXPECT_EQ(parse_cpu_kernel_override("sgemm"), CpuKernelOverride::sgemm);
  EXPECT_THROW(parse_cpu_kernel_override("AVX2"), std::invalid_argument);
  EXPECT_THROW(parse_cpu_kernel_override("fast"), std::invalid_argument);
}

}  // namespace
}  // namespace pagedserve
