#include "kernels/cpu/rope.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "kernels/reference/rope_reference.h"

namespace pagedserve {
namespace {

TEST(Rope, MatchesReferenceAtScatteredPositions) {
  const unsigned seed = std::random_device{}();
  std::printf("seed %u\n", seed);
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  const std::optional<RopeLlama3Scaling> llama3 = RopeLlama3Scaling{8.0f, 1.0f, 4.0f, 8192};
  const std::optional<RopeLlama3Scaling> none;
  for (const auto& [head_dim, theta, scaling] :
       {std::tuple{64, 1e6f, none}, {128, 5e5f, llama3}, {2, 1e4f, none}, {80, 1e4f, llama3}}) {
    const int num_tokens = 11;
    const int num_heads = 3;
    const int half = head_dim / 2;
    std::vector<float> inv_freq = rope_inv_freq(head_dim, theta, scaling);
    std::vector<std::int32_t> positions(num_tokens);
    std::uniform_int_distribution<std::int32_t> pick(0, 4000);
    for (auto& p : positions) p = pick(rng);
    positions[0] = 0;
    std::vector<float> x(static_cast<std::size_t>(num_tokens * num_heads * head_dim));
    for (float& v : x) v = dist(rng);
    std::vector<float> expected = x;
    std::vector<float> cos(static_cast<std::size_t>(num_tokens * half)), sin(cos.size());
    const TensorView positions_view(positions.data(), DType::i32, {num_tokens});
    const TensorView inv_freq_view(inv_freq.data(), DType::f32, {half});
    rope_cos_sin(positions_view, inv_freq_view, TensorView(cos.data(), DType::f32, {num_tokens, half}),
                 TensorView(sin.data(), DType::f32, {num_tokens, half}));
    apply_rope(TensorView(x.data(), DType::f32, {num_tokens, num_heads, head_dim}),
               TensorView(cos.data(), DType::f32, {num_tokens, half}),
               TensorView(sin.data(), DType::f32, {num_tokens, half}));
    apply_rope_reference(TensorView(expected.data(), DType::f32, {num_tokens, num_heads, head_dim}),
                         positions_view, inv_freq_view);
    for (std::size_t i = 0; i < x.size(); ++i)
      ASSERT_NEAR(x[i], expected[i], 2e-5f) << "head_dim " << head_dim;
    // Position 0 is the identity.
    for (int i = 0; i < num_heads * head_dim; ++i) ASSERT_NEAR(x[i], expected[i], 0.0f);
  }
}

TEST(Rope, Llama3ScalingKeepsHighAndSlowsLowFrequencies) {
  const RopeLlama3Scaling llama3{8.0f, 1.0f, 4.0f, 8192};
  const std::vector<float> plain = rope_inv_freq(128, 5e5f);
  const std::vector<float> scaled = rope_inv_freq(128, 5e5f, llama3);
  EXPECT_EQ(scaled.front(), plain.front());             // wavelength 2*pi: untouched
  EXPECT_FLOAT_EQ(scaled.back(), plain.back() / 8.0f);  // longest wavelength: divided by factor
  for (std::size_t i = 0; i < plain.size(); ++i) {
    EXPECT_LE(scaled[i], plain[i]);
    EXPECT_GE(scaled[i], plain[i] / 8.0f * (1 - 1e-6f));
  }
}

}  // namespace
}  // namespace pagedserve
