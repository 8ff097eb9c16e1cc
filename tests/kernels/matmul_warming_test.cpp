// MatmulWarmPlan (kernels/cpu/matmul_warming.h): each pool thread plans exactly its own parts of
// each call (all of them together are every weight byte once), capped at its budget; a posted plan
// leaves matmul's results bit for bit as they are.
#include "kernels/cpu/matmul_warming.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "core/buffer.h"
#include "core/half.h"
#include "kernels/cpu/matmul.h"

namespace pagedserve {
namespace {

Buffer weights_of(std::int64_t n, std::int64_t k, DType dtype) {
  Buffer w(static_cast<std::size_t>(n * k) * dtype_size(dtype), Device::cpu);
  std::memset(w.data(), 0, w.nbytes());
  return w;
}

TEST(MatmulWarmPlan, EveryThreadPlansItsOwnPartsOfEachCall) {
  for (DType dtype : {DType::bf16, DType::f16}) {
    // Qwen2.5-0.5B's o_proj, then gate/up; odd shapes too.
    Buffer o = weights_of(896, 896, dtype), gate = weights_of(4864, 896, dtype), up = weights_of(4864, 896, dtype);
    Buffer a = weights_of(37, 96, dtype), b = weights_of(5, 96, dtype);
    const TensorView o_view = o.view(dtype, {896, 896}), gate_view = gate.view(dtype, {4864, 896}),
                     up_view = up.view(dtype, {4864, 896}), a_view = a.view(dtype, {37, 96}),
                     b_view = b.view(dtype, {5, 96});
    for (int threads : {1, 2, 3, 16}) {
      for (std::int64_t m : {1, 4, 64}) {
        MatmulWarmPlan plan(threads, std::int64_t{1} << 40);
        plan.add(m, {o_view});
        plan.add(m, {gate_view, up_view});
        plan.add(m, {a_view, b_view});
        std::int64_t total = 0, smallest = INT64_MAX, largest = 0;
        for (int owner = 0; owner < threads; ++owner) {
          const std::int64_t bytes = plan.planned_bytes(owner);
          total += bytes;
          smallest = std::min(smallest, bytes);
          largest = std::max(largest, bytes);
        }
        const auto all = static_cast<std::int64_t>(o.nbytes() + gate.nbytes() + up.nbytes() + a.nbytes() + b.nbytes());
        EXPECT_EQ(total, all) << "threads " << threads << " m " << m;
        // Parts are near-equal: no thread owns much more than its share.
        EXPECT_LE(largest - smallest, all / threads / 4 + 64 * 896 * 2) << "threads " << threads << " m " << m;

        MatmulWarmPlan capped(threads, 4096);
        capped.add(m, {o_view});
        capped.add(m, {gate_view, up_view});
        for (int owner = 0; owner < threads; ++owner) EXPECT_EQ(capped.planned_bytes(owner), 4096);
        capped.clear();
        for (int owner = 0; owner < threads; ++owner) EXPECT_EQ(capped.planned_bytes(owner), 0);
      }
    }
  }
}

TEST(MatmulWarmPlan, APostedPlanLeavesMatmulResultsUnchanged) {
  ThreadPool pool(4);
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  const std::int64_t m = 3, k = 200, n = 301;
  Buffer x(static_cast<std::size_t>(m * k) * 4, Device::cpu), w(static_cast<std::size_t>(n * k) * 2, Device::cpu);
  for (std::int64_t i = 0; i < m * k; ++i) static_cast<float*>(x.data())[i] = dist(rng);
  for (std::int64_t i = 0; i < n * k; ++i) static_cast<std::uint16_t*>(w.data())[i] = to_f16(dist(rng)).bits;
  Buffer y_plain(static_cast<std::size_t>(m * n) * 4, Device::cpu), y_warm(static_cast<std::size_t>(m * n) * 4, Device::cpu);
  const auto floats = static_cast<std::int64_t>(matmul_workspace_floats(m, k, pool.size()));
  Buffer workspace(static_cast<std::size_t>(floats) * 4, Device::cpu);
  const TensorView w_view = w.view(DType::f16, {n, k});
  matmul(x.view(DType::f32, {m, k}), w_view, TensorView(), y_plain.view(DType::f32, {m, n}),
         workspace.view(DType::f32, {floats}), pool);
  MatmulWarmPlan plan(pool.size(), 1 << 20);
  plan.add(m, {w_view});
  for (int round = 0; round < 20; ++round) {
    pool.post_spare_work(&plan.spare_work());
    matmul(x.view(DType::f32, {m, k}), w_view, TensorView(), y_warm.view(DType::f32, {m, n}),
           workspace.view(DType::f32, {floats}), pool);
    pool.post_spare_work(nullptr);
    ASSERT_EQ(std::memcmp(y_plain.data(), y_warm.data(), y_plain.nbytes()), 0) << "round " << round;
  }
}

}  // namespace
}  // namespace pagedserve
