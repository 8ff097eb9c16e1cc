// The model's CUDA ops (model_ops_cuda.h) and cuBLAS GEMM (gemm_cuda.h) against the CPU references
// (kernels/reference) on fresh random inputs: row lengths that take the vector and the scalar
// paths, token counts from 1 to 300, bf16 and f16; for the QKV epilogue every head_dim the models
// use, GQA and equal head counts, bias and q/k norm on and off, pages of 16 and 64, permuted and -1
// slots with the untouched cache rows checked bit for bit, positions up to 131071; GEMMs in every
// dtype pair, odd m/n/k, accumulating; and a norm + GEMM step replayed from a CUDA graph.
// Skips without a GPU (the argument checks, which never reach the device, run everywhere).
#include <gtest/gtest.h>

#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "core/buffer.h"
#include "core/error.h"
#include "core/half.h"
#include "kernels/attention.h"
#include "kernels/cpu/rope.h"
#include "kernels/cuda/gemm_cuda.h"
#include "kernels/cuda/skinny_gemm_cuda.h"
#include "kernels/cuda/model_ops_cuda.h"
#include "kernels/reference/activation_reference.h"
#include "kernels/reference/embedding_reference.h"
#include "kernels/reference/matmul_reference.h"
#include "kernels/reference/paged_attention_reference.h"
#include "kernels/reference/rmsnorm_reference.h"
#include "kernels/reference/rope_reference.h"
#include "tests/kernels/cuda/cuda_test_support.h"

namespace pagedserve {
namespace {

#define SKIP_WITHOUT_GPU() \
  if (!testing::cuda_device_present()) GTEST_SKIP() << "no CUDA device"

constexpr std::uint16_t kSentinel = 0x7e5a;  // a NaN in both bf16 and f16: never a kernel's output

std::uint32_t fresh_seed() { return std::random_device{}(); }

std::uint16_t to_act(float value, DType act) {
  return act == DType::bf16 ? to_bf16(value).bits : to_f16(value).bits;
}

float from_act(std::uint16_t bits, DType act) {
  return act == DType::bf16 ? to_float(bf16{bits}) : to_float(f16{bits});
}

std::vector<float> normal(std::size_t n, double stddev, std::mt19937& rng) {
  std::normal_distribution<float> dist(0.0f, static_cast<float>(stddev));
  std::vector<float> values(n);
  for (float& v : values) v = dist(rng);
  return values;
}

std::vector<std::uint16_t> encode(const std::vector<float>& values, DType act) {
  std::vector<std::uint16_t> bits(values.size());
  for (std::size_t i = 0; i < values.size(); ++i) bits[i] = to_act(values[i], act);
  return bits;
}

std::vector<float> decode(const std::vector<std::uint16_t>& bits, DType act) {
  std::vector<float> values(bits.size());
  for (std::size_t i = 0; i < bits.size(); ++i) values[i] = from_act(bits[i], act);
  return values;
}

std::vector<std::uint16_t> random_act(std::size_t n, DType act, double stddev, std::mt19937& rng) {
  return encode(normal(n, stddev, rng), act);
}

template <typename T>
std::vector<T> download(const Buffer& buffer, std::size_t count) {
  std::vector<T> host(count);
  copy_bytes(host.data(), Device::cpu, buffer.data(), Device::cuda, count * sizeof(T));
  return host;
}

void synchronize() { testing::cuda_ok(cudaDeviceSynchronize(), "kernel"); }

// A pageable cudaMemcpy may return before its DMA lands and does not order work on non-blocking
// streams: wait for it.
template <typename T>
void upload(const Buffer& buffer, const std::vector<T>& host) {
  copy_bytes(buffer.data(), Device::cuda, host.data(), Device::cpu, host.size() * sizeof(T));
  synchronize();
}

// Relative tolerance of a value rounded to `dtype` next to a reference rounded (or not) from a
// slightly different f32: two ulps.
double rounding_tolerance(DType dtype) {
  switch (dtype) {
    case DType::bf16:
      return 1.0 / 64;
    case DType::f16:
      return 1.0 / 512;
    default:
      return 0.0;
  }
}

// Every element within rtol * |want| + atol_fraction * (largest |want| of its row).
::testing::AssertionResult rows_close(const std::vector<float>& got, const std::vector<float>& want,
                                      std::size_t row_len, double rtol, double atol_fraction) {
  if (got.size() != want.size())
    return ::testing::AssertionFailure() << "size " << got.size() << " != " << want.size();
  std::size_t bad = 0;
  std::string first;
  for (std::size_t row = 0; row * row_len < want.size(); ++row) {
    const std::size_t begin = row * row_len;
    const std::size_t end = std::min(want.size(), begin + row_len);
    double row_max = 0.0;
    for (std::size_t i = begin; i < end; ++i)
      row_max = std::max(row_max, std::abs(static_cast<double>(want[i])));
    for (std::size_t i = begin; i < end; ++i) {
      const double diff = std::abs(static_cast<double>(got[i]) - static_cast<double>(want[i]));
      if (!(diff <= rtol * std::abs(static_cast<double>(want[i])) + atol_fraction * row_max)) {
        if (bad++ == 0) {
          first = "row " + std::to_string(row) + " col " + std::to_string(i - begin) + ": got " +
                  std::to_string(got[i]) + ", want " + std::to_string(want[i]);
        }
      }
    }
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << bad << " of " << want.size() << " elements off; first " << first;
}

// ---- argument checks (host only: they throw before touching the device) ----

TEST(CudaModelOps, RejectsBadArgumentsBeforeLaunching) {
  float residual = 0.0f;
  float weight = 1.0f;
  std::uint16_t out = 0;
  EXPECT_THROW(add_rms_norm_cuda(&residual, nullptr, &weight, &out, DType::f32, 1, 1, 1e-5f, nullptr),
               SetupError);
  EXPECT_THROW(silu_mul_cuda(&out, &out, DType::i32, 1, 1, nullptr), SetupError);
  EXPECT_THROW(gather_rows_cuda(&out, nullptr, &out, DType::f32, 1, 1, nullptr), SetupError);
  EXPECT_THROW(embedding_gather_cuda(&out, DType::i32, nullptr, 1, 1, &residual, nullptr), SetupError);
  QkvEpilogueShape shape;
  shape.num_tokens = 1;
  shape.num_q_heads = 2;
  shape.num_kv_heads = 1;
  shape.head_dim = 64;
  shape.page_size = 16;
  // q_norm without k_norm.
  EXPECT_THROW(qkv_epilogue_cuda(&weight, nullptr, &weight, nullptr, &weight, nullptr, nullptr, &out, &out,
                                 &out, DType::bf16, shape, nullptr),
               SetupError);
  shape.head_dim = 65;
  EXPECT_THROW(qkv_epilogue_cuda(&weight, nullptr, nullptr, nullptr, &weight, nullptr, nullptr, &out, &out,
                                 &out, DType::bf16, shape, nullptr),
               SetupError);
  shape.head_dim = 512;
  EXPECT_THROW(qkv_epilogue_cuda(&weight, nullptr, nullptr, nullptr, &weight, nullptr, nullptr, &out, &out,
                                 &out, DType::bf16, shape, nullptr),
               SetupError);
  shape.head_dim = 64;
  EXPECT_THROW(qkv_epilogue_cuda(&weight, nullptr, nullptr, nullptr, &weight, nullptr, nullptr, &out, &out,
                                 &out, DType::f32, shape, nullptr),
               SetupError);
  // No tokens: nothing is launched and nothing is read.
  shape.num_tokens = 0;
  EXPECT_NO_THROW(qkv_epilogue_cuda(nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr,
                                    nullptr, nullptr, DType::bf16, shape, nullptr));
  EXPECT_NO_THROW(add_rms_norm_cuda(nullptr, nullptr, nullptr, nullptr, DType::f16, 0, 64, 1e-5f, nullptr));
  EXPECT_NO_THROW(silu_mul_cuda(nullptr, nullptr, DType::bf16, 0, 64, nullptr));
  EXPECT_NO_THROW(gather_rows_cuda(nullptr, nullptr, nullptr, DType::bf16, 0, 64, nullptr));
  EXPECT_NO_THROW(embedding_gather_cuda(nullptr, DType::f32, nullptr, 0, 64, nullptr, nullptr));
}

// ---- embedding gather ----

TEST(CudaModelOps, EmbeddingGatherMatchesReference) {
  SKIP_WITHOUT_GPU();
  const std::uint32_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  const int vocab = 517;
  for (DType table_dtype : {DType::bf16, DType::f16, DType::f32}) {
    for (int hidden : {40, 1000, 4104, 37}) {
      const std::size_t table_elements = static_cast<std::size_t>(vocab) * hidden;
      const std::vector<float> values = normal(table_elements, 1.0, rng);
      std::vector<std::uint8_t> table(table_elements * dtype_size(table_dtype));
      if (table_dtype == DType::f32) {
        std::memcpy(table.data(), values.data(), table.size());
      } else {
        const std::vector<std::uint16_t> bits = encode(values, table_dtype);
        std::memcpy(table.data(), bits.data(), table.size());
      }
      const Buffer table_device = testing::to_device(table);
      for (int num_tokens : {1, 3, 37, 300}) {
        SCOPED_TRACE(std::string(dtype_name(table_dtype)) + " hidden " + std::to_string(hidden) + " tokens " +
                     std::to_string(num_tokens));
        std::uniform_int_distribution<std::int32_t> pick(0, vocab - 1);
        std::vector<std::int32_t> ids(static_cast<std::size_t>(num_tokens));
        for (auto& id : ids) id = pick(rng);
        ids.front() = 0;
        ids.back() = vocab - 1;
        const std::size_t out_elements = static_cast<std::size_t>(num_tokens) * hidden;
        const Buffer ids_device = testing::to_device(ids);
        const Buffer residual = testing::to_device(std::vector<float>(out_elements, std::nanf("")));
        embedding_gather_cuda(table_device.data(), table_dtype,
                              static_cast<const std::int32_t*>(ids_device.data()), num_tokens, hidden,
                              static_cast<float*>(residual.data()), nullptr);
        synchronize();
        std::vector<float> expected(out_elements);
        embedding_lookup_reference(TensorView(table.data(), table_dtype, {vocab, hidden}), ids,
                                   TensorView(expected.data(), DType::f32, {num_tokens, hidden}));
        EXPECT_TRUE(rows_close(download<float>(residual, out_elements), expected, hidden, 0.0, 0.0));
      }
    }
  }
}

// ---- residual add + RMSNorm ----

TEST(CudaModelOps, AddRmsNormMatchesReference) {
  SKIP_WITHOUT_GPU();
  const std::uint32_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> exponent(-2.0, 2.0);
  const float eps = 1e-5f;
  for (DType act : {DType::bf16, DType::f16}) {
    for (int hidden : {40, 1000, 4104, 37}) {
      for (int num_tokens : {1, 3, 37, 300}) {
        for (bool with_delta : {false, true}) {
          SCOPED_TRACE(std::string(dtype_name(act)) + " hidden " + std::to_string(hidden) + " tokens " +
                       std::to_string(num_tokens) + (with_delta ? " with delta" : " no delta"));
          const std::size_t elements = static_cast<std::size_t>(num_tokens) * hidden;
          // Rows of very different scales: the norm must not depend on it.
          std::vector<float> residual = normal(elements, 1.0, rng);
          std::vector<float> delta_values = normal(elements, 1.0, rng);
          for (int t = 0; t < num_tokens; ++t) {
            const float scale = static_cast<float>(std::pow(10.0, exponent(rng)));
            for (int i = 0; i < hidden; ++i) {
              residual[static_cast<std::size_t>(t) * hidden + i] *= scale;
              delta_values[static_cast<std::size_t>(t) * hidden + i] *= scale;
            }
          }
          const std::vector<float> delta = decode(encode(delta_values, act), act);  // f32 (GEMM output)
          std::vector<float> weight = normal(static_cast<std::size_t>(hidden), 0.2, rng);
          for (float& w : weight) w += 1.0f;

          const Buffer residual_device = testing::to_device(residual);
          const Buffer delta_device = testing::to_device(delta);
          const Buffer weight_device = testing::to_device(weight);
          const Buffer out_device = testing::to_device(std::vector<std::uint16_t>(elements, kSentinel));
          add_rms_norm_cuda(static_cast<float*>(residual_device.data()),
                            with_delta ? static_cast<const float*>(delta_device.data()) : nullptr,
                            static_cast<const float*>(weight_device.data()), out_device.data(), act,
                            num_tokens, hidden, eps, nullptr);
          synchronize();

          // The residual update is one f32 add, exactly as here.
          std::vector<float> expected_residual = residual;
          if (with_delta) {
            for (std::size_t i = 0; i < elements; ++i) expected_residual[i] += delta[i];
          }
          EXPECT_TRUE(
              rows_close(download<float>(residual_device, elements), expected_residual, hidden, 0.0, 0.0))
              << "residual";
          std::vector<float> expected(elements);
          rms_norm_reference(TensorView(expected_residual.data(), DType::f32, {num_tokens, hidden}),
                             TensorView(weight.data(), DType::f32, {hidden}), eps,
                             TensorView(expected.data(), DType::f32, {num_tokens, hidden}));
          EXPECT_TRUE(rows_close(decode(download<std::uint16_t>(out_device, elements), act), expected, hidden,
                                 rounding_tolerance(act), 1e-4))
              << "out";
        }
      }
    }
  }
}

// ---- QKV epilogue ----

struct QkvCase {
  DType act;
  int head_dim, num_q_heads, num_kv_heads, page_size;
  bool bias, norm;
  int num_tokens;
};

std::string describe(const QkvCase& c) {
  return std::string(dtype_name(c.act)) + " d" + std::to_string(c.head_dim) + " heads " +
         std::to_string(c.num_q_heads) + "/" + std::to_string(c.num_kv_heads) + " page " +
         std::to_string(c.page_size) + (c.bias ? " bias" : "") + (c.norm ? " qk-norm" : "") + " tokens " +
         std::to_string(c.num_tokens);
}

void expect_qkv_epilogue_matches_reference(const QkvCase& c, std::mt19937& rng) {
  SCOPED_TRACE(describe(c));
  const int t_count = c.num_tokens;
  const int d = c.head_dim;
  const int qh = c.num_q_heads;
  const int kvh = c.num_kv_heads;
  const int heads = qh + 2 * kvh;
  const std::size_t width = static_cast<std::size_t>(heads) * d;
  const float eps = 1e-6f;

  const std::vector<float> qkv = normal(t_count * width, 1.0, rng);  // f32, as the QKV GEMM writes it
  const std::vector<float> bias = normal(width, 0.5, rng);
  std::vector<float> q_norm = normal(static_cast<std::size_t>(d), 0.2, rng);
  std::vector<float> k_norm = normal(static_cast<std::size_t>(d), 0.2, rng);
  for (float& w : q_norm) w += 1.0f;
  for (float& w : k_norm) w += 1.0f;
  const std::vector<float> inv_freq = rope_inv_freq(d, 5e5f);  // inv_freq[0] = 1: angle = position

  std::vector<std::int32_t> positions(static_cast<std::size_t>(t_count));
  std::uniform_int_distribution<std::int32_t> pick_position(0, 131071);
  for (auto& p : positions) p = pick_position(rng);
  positions.front() = 0;
  if (t_count > 2) positions[1] = 131071;
  positions.back() = 100000;

  // A permutation of the cache's slots (two spare pages stay unwritten) with one padding token.
  const int num_pages = (t_count + c.page_size - 1) / c.page_size + 2;
  const int num_slots = num_pages * c.page_size;
  std::vector<std::int32_t> all_slots(static_cast<std::size_t>(num_slots));
  std::iota(all_slots.begin(), all_slots.end(), 0);
  std::shuffle(all_slots.begin(), all_slots.end(), rng);
  std::vector<std::int32_t> slot_mapping(all_slots.begin(), all_slots.begin() + t_count);
  if (t_count > 1) slot_mapping[static_cast<std::size_t>(t_count / 2)] = -1;

  const std::size_t cache_elements = static_cast<std::size_t>(num_slots) * kvh * d;
  const std::size_t q_elements = static_cast<std::size_t>(t_count) * qh * d;
  const Buffer qkv_device = testing::to_device(qkv);
  const Buffer bias_device = testing::to_device(bias);
  const Buffer q_norm_device = testing::to_device(q_norm);
  const Buffer k_norm_device = testing::to_device(k_norm);
  const Buffer inv_freq_device = testing::to_device(inv_freq);
  const Buffer positions_device = testing::to_device(positions);
  const Buffer slots_device = testing::to_device(slot_mapping);
  const Buffer q_out = testing::to_device(std::vector<std::uint16_t>(q_elements, kSentinel));
  const Buffer k_cache = testing::to_device(std::vector<std::uint16_t>(cache_elements, kSentinel));
  const Buffer v_cache = testing::to_device(std::vector<std::uint16_t>(cache_elements, kSentinel));

  QkvEpilogueShape shape;
  shape.num_tokens = t_count;
  shape.num_q_heads = qh;
  shape.num_kv_heads = kvh;
  shape.head_dim = d;
  shape.page_size = c.page_size;
  shape.eps = eps;
  qkv_epilogue_cuda(static_cast<const float*>(qkv_device.data()),
                    c.bias ? static_cast<const float*>(bias_device.data()) : nullptr,
                    c.norm ? static_cast<const float*>(q_norm_device.data()) : nullptr,
                    c.norm ? static_cast<const float*>(k_norm_device.data()) : nullptr,
                    static_cast<const float*>(inv_freq_device.data()),
                    static_cast<const std::int32_t*>(positions_device.data()),
                    static_cast<const std::int32_t*>(slots_device.data()), q_out.data(), k_cache.data(),
                    v_cache.data(), c.act, shape, nullptr);
  synchronize();

  // Reference: + bias, split into q/k/v, RMSNorm per head, RoPE, then the cache write.
  const std::vector<float>& x = qkv;
  std::vector<float> q(q_elements), k(static_cast<std::size_t>(t_count) * kvh * d), v(k.size());
  for (int t = 0; t < t_count; ++t) {
    for (int h = 0; h < heads; ++h) {
      for (int i = 0; i < d; ++i) {
        const std::size_t column = static_cast<std::size_t>(h) * d + i;
        const float value = x[t * width + column] + (c.bias ? bias[column] : 0.0f);
        if (h < qh) {
          q[(static_cast<std::size_t>(t) * qh + h) * d + i] = value;
        } else if (h < qh + kvh) {
          k[(static_cast<std::size_t>(t) * kvh + (h - qh)) * d + i] = value;
        } else {
          v[(static_cast<std::size_t>(t) * kvh + (h - qh - kvh)) * d + i] = value;
        }
      }
    }
  }
  if (c.norm) {
    std::vector<float> normed(q.size());
    rms_norm_reference(TensorView(q.data(), DType::f32, {t_count * qh, d}),
                       TensorView(q_norm.data(), DType::f32, {d}), eps,
                       TensorView(normed.data(), DType::f32, {t_count * qh, d}));
    q = normed;
    normed.resize(k.size());
    rms_norm_reference(TensorView(k.data(), DType::f32, {t_count * kvh, d}),
                       TensorView(k_norm.data(), DType::f32, {d}), eps,
                       TensorView(normed.data(), DType::f32, {t_count * kvh, d}));
    k = normed;
  }
  const TensorView positions_view(positions.data(), DType::i32, {t_count});
  const TensorView inv_freq_view(const_cast<float*>(inv_freq.data()), DType::f32, {d / 2});
  apply_rope_reference(TensorView(q.data(), DType::f32, {t_count, qh, d}), positions_view, inv_freq_view);
  apply_rope_reference(TensorView(k.data(), DType::f32, {t_count, kvh, d}), positions_view, inv_freq_view);
  std::vector<std::uint16_t> expected_k(cache_elements, kSentinel), expected_v(cache_elements, kSentinel);
  KVCacheWriteArgs write;
  write.k_new = TensorView(k.data(), DType::f32, {t_count, kvh, d});
  write.v_new = TensorView(v.data(), DType::f32, {t_count, kvh, d});
  write.slot_mapping = TensorView(slot_mapping.data(), DType::i32, {t_count});
  write.k_cache = TensorView(expected_k.data(), c.act, {num_pages, c.page_size, kvh, d});
  write.v_cache = TensorView(expected_v.data(), c.act, {num_pages, c.page_size, kvh, d});
  write_kv_cache_reference(write);

  const double rtol = rounding_tolerance(c.act);
  const double atol = 1e-4;  // of the head's largest value: f32 rounding, the fast sincos after reduction
  EXPECT_TRUE(rows_close(decode(download<std::uint16_t>(q_out, q_elements), c.act), q, d, rtol, atol)) << "q";

  std::vector<bool> written(static_cast<std::size_t>(num_slots), false);
  for (std::int32_t slot : slot_mapping) {
    if (slot >= 0) written[static_cast<std::size_t>(slot)] = true;
  }
  const std::size_t slot_elements = static_cast<std::size_t>(kvh) * d;
  const auto check_cache = [&](const Buffer& cache, const std::vector<std::uint16_t>& expected,
                               const char* name) {
    const std::vector<std::uint16_t> got = download<std::uint16_t>(cache, cache_elements);
    std::vector<float> got_written, want_written;
    std::size_t touched = 0;
    for (int slot = 0; slot < num_slots; ++slot) {
      for (std::size_t e = slot * slot_elements; e < (slot + 1) * slot_elements; ++e) {
        if (written[static_cast<std::size_t>(slot)]) {
          got_written.push_back(from_act(got[e], c.act));
          want_written.push_back(from_act(expected[e], c.act));
        } else if (got[e] != kSentinel) {
          ++touched;
        }
      }
    }
    EXPECT_EQ(touched, 0u) << name << ": elements of unwritten slots changed";
    EXPECT_TRUE(rows_close(got_written, want_written, static_cast<std::size_t>(d), rtol, atol)) << name;
  };
  check_cache(k_cache, expected_k, "k_cache");
  check_cache(v_cache, expected_v, "v_cache");
}

TEST(CudaModelOps, QkvEpilogueMatchesReference) {
  SKIP_WITHOUT_GPU();
  const std::uint32_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  const int token_counts[] = {1, 3, 37, 300};
  int index = 0;
  for (DType act : {DType::bf16, DType::f16}) {
    for (int head_dim : {64, 80, 128, 256}) {
      for (auto [qh, kvh] : {std::pair{8, 2}, std::pair{6, 6}}) {
        for (int page_size : {16, 64}) {
          for (bool bias : {false, true}) {
            for (bool norm : {false, true}) {
              const int num_tokens = token_counts[index++ % 4];
              expect_qkv_epilogue_matches_reference(
                  {act, head_dim, qh, kvh, page_size, bias, norm, num_tokens}, rng);
            }
          }
        }
      }
    }
  }
}

// The main serving shapes (Llama 3 8B: 32/8 heads of 128; Qwen3: q/k norm) at a prefill's size.
TEST(CudaModelOps, QkvEpilogueMainShapes) {
  SKIP_WITHOUT_GPU();
  const std::uint32_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  expect_qkv_epilogue_matches_reference({DType::bf16, 128, 32, 8, 16, false, false, 300}, rng);
  expect_qkv_epilogue_matches_reference({DType::bf16, 128, 32, 8, 64, false, true, 300}, rng);
  expect_qkv_epilogue_matches_reference({DType::f16, 128, 28, 4, 16, true, false, 129}, rng);
}

// ---- SiLU x up ----

TEST(CudaModelOps, SiluMulMatchesReference) {
  SKIP_WITHOUT_GPU();
  const std::uint32_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  for (DType act : {DType::bf16, DType::f16}) {
    for (int intermediate : {40, 1000, 4104, 37}) {
      for (int num_tokens : {1, 3, 37, 300}) {
        SCOPED_TRACE(std::string(dtype_name(act)) + " intermediate " + std::to_string(intermediate) +
                     " tokens " + std::to_string(num_tokens));
        const std::size_t elements = static_cast<std::size_t>(num_tokens) * intermediate;
        const std::vector<std::uint16_t> gate_up = random_act(2 * elements, act, 3.0, rng);
        const Buffer gate_up_device = testing::to_device(gate_up);
        const Buffer out_device = testing::to_device(std::vector<std::uint16_t>(elements, kSentinel));
        silu_mul_cuda(gate_up_device.data(), out_device.data(), act, num_tokens, intermediate, nullptr);
        synchronize();
        std::vector<float> gate(elements), up(elements), expected(elements);
        for (int t = 0; t < num_tokens; ++t) {
          for (int i = 0; i < intermediate; ++i) {
            const std::size_t row = static_cast<std::size_t>(t) * 2 * intermediate;
            gate[static_cast<std::size_t>(t) * intermediate + i] = from_act(gate_up[row + i], act);
            up[static_cast<std::size_t>(t) * intermediate + i] =
                from_act(gate_up[row + intermediate + i], act);
          }
        }
        silu_mul_reference(TensorView(gate.data(), DType::f32, {num_tokens, intermediate}),
                           TensorView(up.data(), DType::f32, {num_tokens, intermediate}),
                           TensorView(expected.data(), DType::f32, {num_tokens, intermediate}));
        EXPECT_TRUE(rows_close(decode(download<std::uint16_t>(out_device, elements), act), expected,
                               intermediate, rounding_tolerance(act), 1e-4));
      }
    }
  }
}

// ---- row gather ----

TEST(CudaModelOps, GatherRowsCopiesRowsExactly) {
  SKIP_WITHOUT_GPU();
  const std::uint32_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  const int num_tokens = 37;
  for (DType act : {DType::bf16, DType::f16}) {
    for (int width : {40, 1000, 4104, 37}) {
      for (int num_rows : {1, 5, 64}) {
        SCOPED_TRACE(std::string(dtype_name(act)) + " width " + std::to_string(width) + " rows " +
                     std::to_string(num_rows));
        const std::vector<std::uint16_t> in =
            random_act(static_cast<std::size_t>(num_tokens) * width, act, 1.0, rng);
        std::uniform_int_distribution<std::int32_t> pick(0, num_tokens - 1);
        std::vector<std::int32_t> rows(static_cast<std::size_t>(num_rows));
        for (auto& r : rows) r = pick(rng);  // repeats allowed
        rows.back() = num_tokens - 1;
        rows.front() = 0;
        const std::size_t out_elements = static_cast<std::size_t>(num_rows) * width;
        const Buffer in_device = testing::to_device(in);
        const Buffer rows_device = testing::to_device(rows);
        const Buffer out_device = testing::to_device(std::vector<std::uint16_t>(out_elements, kSentinel));
        gather_rows_cuda(in_device.data(), static_cast<const std::int32_t*>(rows_device.data()),
                         out_device.data(), act, num_rows, width, nullptr);
        synchronize();
        const std::vector<std::uint16_t> got = download<std::uint16_t>(out_device, out_elements);
        std::size_t mismatches = 0;
        for (int s = 0; s < num_rows; ++s) {
          for (int i = 0; i < width; ++i) {
            if (got[static_cast<std::size_t>(s) * width + i] !=
                in[static_cast<std::size_t>(rows[s]) * width + i]) {
              ++mismatches;
            }
          }
        }
        EXPECT_EQ(mismatches, 0u);
      }
    }
  }
}

// ---- cuBLAS GEMM ----

// y = x w^T (+ y0) in f64 over the same rounded inputs.
std::vector<float> reference_matmul(const std::vector<float>& x, const std::vector<float>& w, int m, int n,
                                    int k) {
  std::vector<float> y(static_cast<std::size_t>(m) * n);
  matmul_reference(TensorView(const_cast<float*>(x.data()), DType::f32, {m, k}),
                   TensorView(const_cast<float*>(w.data()), DType::f32, {n, k}), TensorView(),
                   TensorView(y.data(), DType::f32, {m, n}));
  return y;
}

TEST(CudaGemm, MatchesHostMatmul) {
  SKIP_WITHOUT_GPU();
  const std::uint32_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  CublasGemm gemm(nullptr);
  for (DType in : {DType::bf16, DType::f16}) {
    for (int m : {1, 2, 3, 4, 5, 7, 129}) {  // up to kSkinnyGemmMaxRows: both paths
      for (int n : {40, 1000}) {
        for (int k : {64, 4096, 1000}) {  // 1000: k % 8 == 0 but not % 256 (a partial last chunk set)
          const std::vector<std::uint16_t> x = random_act(static_cast<std::size_t>(m) * k, in, 1.0, rng);
          const std::vector<std::uint16_t> w = random_act(static_cast<std::size_t>(n) * k, in, 1.0, rng);
          const std::vector<float> product = reference_matmul(decode(x, in), decode(w, in), m, n, k);
          const Buffer x_device = testing::to_device(x);
          const Buffer w_device = testing::to_device(w);
          const std::size_t y_elements = static_cast<std::size_t>(m) * n;
          for (const auto& [out, skinny_rows] : {std::pair{in, 0}, std::pair{DType::f32, 0},
                                                 std::pair{in, kSkinnyGemmMaxRows},
                                                 std::pair{DType::f32, kSkinnyGemmMaxRows}}) {
            {
              SCOPED_TRACE(std::string(dtype_name(in)) + "->" + std::string(dtype_name(out)) + " m " +
                           std::to_string(m) + " n " + std::to_string(n) + " k " + std::to_string(k) +
                           (skinny_rows > 0 ? " skinny" : " cublas"));
              gemm.set_skinny_max_rows(skinny_rows);
              // y starts as NaN: beta = 0 must not read it.
              const std::vector<float> y0(y_elements, std::nanf(""));
              const Buffer y_device =
                  out == DType::f32 ? testing::to_device(y0) : testing::to_device(encode(y0, out));
              gemm.matmul(x_device.data(), w_device.data(), y_device.data(), in, out, m, n, k);
              synchronize();
              const std::vector<float>& expected = product;
              const std::vector<float> got = out == DType::f32
                                                 ? download<float>(y_device, y_elements)
                                                 : decode(download<std::uint16_t>(y_device, y_elements), out);
              // f32 accumulation over k products (a small fraction of the row's scale) and, for a
              // 16-bit y, its rounding.
              EXPECT_TRUE(rows_close(got, expected, static_cast<std::size_t>(n), rounding_tolerance(out),
                                     out == DType::f32 ? 5e-4 : 1e-3));
            }
          }
        }
      }
    }
  }
}

TEST(CudaGemm, RejectsBadDtypesAndSkipsEmpty) {
  SKIP_WITHOUT_GPU();
  CublasGemm gemm(nullptr);
  Buffer buffer(1024, Device::cuda);
  EXPECT_THROW(gemm.matmul(buffer.data(), buffer.data(), buffer.data(), DType::f32, DType::f32, 2, 2, 2),
               SetupError);
  EXPECT_THROW(gemm.matmul(buffer.data(), buffer.data(), buffer.data(), DType::bf16, DType::f16, 2, 2, 2),
               SetupError);
  EXPECT_NO_THROW(gemm.matmul(nullptr, nullptr, nullptr, DType::bf16, DType::bf16, 0, 8, 8));
}

// ---- a norm + GEMM step captured once and replayed on new inputs ----

class Stream {
 public:
  Stream() {
    testing::cuda_ok(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
  }
  ~Stream() { cudaStreamDestroy(stream_); }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  cudaStream_t get() const { return stream_; }

 private:
  cudaStream_t stream_ = nullptr;
};

TEST(CudaGemm, NormAndMatmulReplayFromCudaGraph) {
  SKIP_WITHOUT_GPU();
  const std::uint32_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  const DType act = DType::bf16;
  const int m = 7, k = 1000, n = 520;
  const float eps = 1e-5f;
  const Stream stream;  // outlives the gemm's handle
  CublasGemm gemm(stream.get());
  std::vector<float> weight = normal(static_cast<std::size_t>(k), 0.2, rng);
  for (float& w : weight) w += 1.0f;
  const std::vector<std::uint16_t> w = random_act(static_cast<std::size_t>(n) * k, act, 1.0, rng);
  const Buffer weight_device = testing::to_device(weight);
  const Buffer w_device = testing::to_device(w);
  const Buffer residual_device(static_cast<std::size_t>(m) * k * sizeof(float), Device::cuda);
  const Buffer normed_device(static_cast<std::size_t>(m) * k * 2, Device::cuda);
  const Buffer y_device(static_cast<std::size_t>(m) * n * sizeof(float), Device::cuda);
  const auto step = [&] {
    add_rms_norm_cuda(static_cast<float*>(residual_device.data()), nullptr,
                      static_cast<const float*>(weight_device.data()), normed_device.data(), act, m, k, eps,
                      stream.get());
    gemm.matmul(normed_device.data(), w_device.data(), y_device.data(), act, DType::f32, m, n, k);
  };

  upload(residual_device, normal(static_cast<std::size_t>(m) * k, 1.0, rng));
  step();  // warm-up outside the capture, as the engine does
  testing::cuda_ok(cudaStreamSynchronize(stream.get()), "warm-up");
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  testing::cuda_ok(cudaStreamBeginCapture(stream.get(), cudaStreamCaptureModeThreadLocal),
                   "cudaStreamBeginCapture");
  step();
  testing::cuda_ok(cudaStreamEndCapture(stream.get(), &graph), "cudaStreamEndCapture");
  testing::cuda_ok(cudaGraphInstantiate(&exec, graph, 0), "cudaGraphInstantiate");

  for (int replay = 0; replay < 3; ++replay) {
    SCOPED_TRACE("replay " + std::to_string(replay));
    const std::vector<float> residual = normal(static_cast<std::size_t>(m) * k, 1.0 + replay, rng);
    upload(residual_device, residual);
    testing::cuda_ok(cudaGraphLaunch(exec, stream.get()), "cudaGraphLaunch");
    testing::cuda_ok(cudaStreamSynchronize(stream.get()), "replay");
    std::vector<float> expected_normed(residual.size());
    rms_norm_reference(TensorView(const_cast<float*>(residual.data()), DType::f32, {m, k}),
                       TensorView(weight.data(), DType::f32, {k}), eps,
                       TensorView(expected_normed.data(), DType::f32, {m, k}));
    const std::vector<float> normed = decode(download<std::uint16_t>(normed_device, residual.size()), act);
    EXPECT_TRUE(
        rows_close(normed, expected_normed, static_cast<std::size_t>(k), rounding_tolerance(act), 1e-4));
    // The GEMM against the device's own rounded norm output.
    const std::vector<float> expected_y = reference_matmul(normed, decode(w, act), m, n, k);
    EXPECT_TRUE(rows_close(download<float>(y_device, static_cast<std::size_t>(m) * n), expected_y,
                           static_cast<std::size_t>(n), 0.0, 5e-4));
  }
  testing::cuda_ok(cudaGraphExecDestroy(exec), "cudaGraphExecDestroy");
  testing::cuda_ok(cudaGraphDestroy(graph), "cudaGraphDestroy");
}

}  // namespace
}  // namespace pagedserve
