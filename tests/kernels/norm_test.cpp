// RMSNorm, SiLU*mul, embedding lookup, residual add and dtype conversion against their references.
#include "kernels/cpu/rmsnorm.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "core/half.h"
#include "kernels/cpu/activation.h"
#include "kernels/cpu/embedding.h"
#include "kernels/reference/activation_reference.h"
#include "kernels/reference/embedding_reference.h"
#include "kernels/reference/rmsnorm_reference.h"

namespace pagedserve {
namespace {

std::vector<float> random_floats(std::size_t count, std::mt19937& rng, float scale = 1.0f) {
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> values(count);
  for (float& v : values) v = dist(rng);
  return values;
}

void expect_close(const std::vector<float>& got, const std::vector<float>& want, float relative,
                  float absolute) {
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    ASSERT_NEAR(got[i], want[i], relative * std::fabs(want[i]) + absolute) << "at " << i;
  }
}

TEST(RmsNorm, MatchesReferenceInPlaceAndOutOfPlace) {
  const unsigned seed = std::random_device{}();
  std::printf("seed %u\n", seed);
  std::mt19937 rng(seed);
  for (const auto& [rows, dim] : {std::pair{1, 1}, {3, 7}, {5, 64}, {17, 896}, {2, 4099}}) {
    std::vector<float> x = random_floats(static_cast<std::size_t>(rows * dim), rng, 3.0f);
    std::vector<float> weight = random_floats(static_cast<std::size_t>(dim), rng);
    std::vector<float> out(x.size()), expected(x.size());
    const TensorView w_view(weight.data(), DType::f32, {dim});
    rms_norm(TensorView(x.data(), DType::f32, {rows, dim}), w_view, 1e-6f,
             TensorView(out.data(), DType::f32, {rows, dim}));
    rms_norm_reference(TensorView(x.data(), DType::f32, {rows, dim}), w_view, 1e-6f,
                       TensorView(expected.data(), DType::f32, {rows, dim}));
    expect_close(out, expected, 1e-5f, 1e-6f);
    rms_norm(TensorView(x.data(), DType::f32, {rows, dim}), w_view, 1e-6f,
             TensorView(x.data(), DType::f32, {rows, dim}));
    expect_close(x, expected, 1e-5f, 1e-6f);
  }
}

TEST(SiluMul, MatchesReferenceIncludingLargeMagnitudes) {
  const unsigned seed = std::random_device{}();
  std::printf("seed %u\n", seed);
  std::mt19937 rng(seed);
  // silu_mul picks the vector form where the CPU has AVX2; the portable form runs everywhere.
  for (auto form : {&silu_mul, &silu_mul_portable}) {
    for (int count : {1, 7, 8, 9, 4864 * 3 + 5}) {
      std::vector<float> gate = random_floats(static_cast<std::size_t>(count), rng, 20.0f);
      gate[0] = -100.0f;  // exp(-g) past f32's range: silu(g) * up is ~0
      std::vector<float> up = random_floats(static_cast<std::size_t>(count), rng);
      std::vector<float> out(gate.size()), expected(gate.size());
      (*form)(TensorView(gate.data(), DType::f32, {count}), TensorView(up.data(), DType::f32, {count}),
              TensorView(out.data(), DType::f32, {count}));
      silu_mul_reference(TensorView(gate.data(), DType::f32, {count}),
                         TensorView(up.data(), DType::f32, {count}),
                         TensorView(expected.data(), DType::f32, {count}));
      expect_close(out, expected, 1e-5f, 1e-30f);
      // In place (out aliases gate), as the model calls it.
      (*form)(TensorView(gate.data(), DType::f32, {count}), TensorView(up.data(), DType::f32, {count}),
              TensorView(gate.data(), DType::f32, {count}));
      expect_close(gate, expected, 1e-5f, 1e-30f);
    }
  }
}

TEST(SiluMul, PropagatesNan) {
  for (auto form : {&silu_mul, &silu_mul_portable}) {
    std::vector<float> gate = {1.0f, std::nanf(""), -2.0f, 0.5f, 3.0f, -1.0f, 2.0f, 0.0f, 1.0f};
    std::vector<float> up(gate.size(), 1.0f);
    std::vector<float> out(gate.size());
    const auto n = static_cast<std::int64_t>(gate.size());
    (*form)(TensorView(gate.data(), DType::f32, {n}), TensorView(up.data(), DType::f32, {n}),
            TensorView(out.data(), DType::f32, {n}));
    EXPECT_TRUE(std::isnan(out[1]));
    EXPECT_FALSE(std::isnan(out[0]));
    EXPECT_EQ(out[7], 0.0f);
  }
}

TEST(Embedding, LooksUpEveryDtype) {
  const unsigned seed = std::random_device{}();
  std::printf("seed %u\n", seed);
  std::mt19937 rng(seed);
  const int vocab = 37;
  const int hidden = 13;
  std::vector<float> table_f32 = random_floats(vocab * hidden, rng);
  std::vector<bf16> table_bf16(table_f32.size());
  std::vector<f16> table_f16(table_f32.size());
  for (std::size_t i = 0; i < table_f32.size(); ++i) {
    table_bf16[i] = to_bf16(table_f32[i]);
    table_f16[i] = to_f16(table_f32[i]);
  }
  std::uniform_int_distribution<std::int32_t> pick(0, vocab - 1);
  std::vector<std::int32_t> ids(9);
  for (auto& id : ids) id = pick(rng);
  ids[0] = 0;
  ids[1] = vocab - 1;
  const TensorView tables[] = {TensorView(table_f32.data(), DType::f32, {vocab, hidden}),
                               TensorView(table_bf16.data(), DType::bf16, {vocab, hidden}),
                               TensorView(table_f16.data(), DType::f16, {vocab, hidden})};
  for (const TensorView& table : tables) {
    std::vector<float> out(ids.size() * hidden), expected(ids.size() * hidden);
    const std::int64_t n = static_cast<std::int64_t>(ids.size());
    embedding_lookup(table, ids, TensorView(out.data(), DType::f32, {n, hidden}));
    embedding_lookup_reference(table, ids, TensorView(expected.data(), DType::f32, {n, hidden}));
    EXPECT_EQ(out, expected) << dtype_name(table.dtype());
  }
}

TEST(Elementwise, AddInPlaceAndConvertRoundTrip) {
  const unsigned seed = std::random_device{}();
  std::printf("seed %u\n", seed);
  std::mt19937 rng(seed);
  const int count = 1001;
  std::vector<float> x = random_floats(count, rng), y = random_floats(count, rng);
  std::vector<float> sum(count);
  for (int i = 0; i < count; ++i) sum[i] = x[i] + y[i];
  add_in_place(TensorView(x.data(), DType::f32, {count}), TensorView(y.data(), DType::f32, {count}));
  EXPECT_EQ(x, sum);

  std::vector<bf16> as_bf16(count);
  std::vector<f16> as_f16(count);
  std::vector<float> back(count);
  convert_elements(TensorView(x.data(), DType::f32, {count}),
                   TensorView(as_bf16.data(), DType::bf16, {count}));
  convert_elements(TensorView(as_bf16.data(), DType::bf16, {count}),
                   TensorView(back.data(), DType::f32, {count}));
  for (int i = 0; i < count; ++i) ASSERT_EQ(back[i], to_float(to_bf16(x[i])));
  convert_elements(TensorView(x.data(), DType::f32, {count}), TensorView(as_f16.data(), DType::f16, {count}));
  convert_elements(TensorView(as_f16.data(), DType::f16, {count}),
                   TensorView(back.data(), DType::f32, {count}));
  for (int i = 0; i < count; ++i) ASSERT_EQ(back[i], to_float(to_f16(x[i])));
}

}  // namespace
}  // namespace pagedserve
