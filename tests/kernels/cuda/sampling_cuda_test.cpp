// The CUDA sampler (kernels/cuda/sampling_cuda.h) against the CPU Sampler (model/sampler.h):
// greedy tokens, penalised logits and raw logprobs must match it; random draws must follow the
// distribution it defines (frequencies over many seeds) and never leave the set it keeps. Skips
// when no CUDA device is present.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <iostream>
#include <limits>
#include <numeric>
#include <random>
#include <set>
#include <stdexcept>
#include <span>
#include <string>
#include <vector>

#include "kernels/cuda/sampling_cuda.h"
#include "model/sampler.h"

namespace pagedserve {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

void cuda_ok(cudaError_t status, const char* what) {
  if (status != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(status));
}

bool cuda_device_present() {
  int count = 0;
  return cudaGetDeviceCount(&count) == cudaSuccess && count > 0;
}

#define SKIP_WITHOUT_CUDA_DEVICE()                                \
  do {                                                            \
    if (!cuda_device_present()) GTEST_SKIP() << "no CUDA device"; \
  } while (0)

// Device memory for n elements of T; tests only.
template <typename T>
class DeviceArray {
 public:
  explicit DeviceArray(std::size_t n) : n_(n) {
    cuda_ok(cudaMalloc(&data_, std::max<std::size_t>(n, 1) * sizeof(T)), "cudaMalloc");
  }
  explicit DeviceArray(const std::vector<T>& host) : DeviceArray(host.size()) {
    cuda_ok(cudaMemcpy(data_, host.data(), n_ * sizeof(T), cudaMemcpyHostToDevice), "cudaMemcpy(to device)");
  }
  ~DeviceArray() { cudaFree(data_); }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;

  T* data() const { return static_cast<T*>(data_); }
  std::vector<T> download() const {
    std::vector<T> host(n_);
    cuda_ok(cudaMemcpy(host.data(), data_, n_ * sizeof(T), cudaMemcpyDeviceToHost), "cudaMemcpy(to host)");
    return host;
  }

 private:
  void* data_ = nullptr;
  std::size_t n_ = 0;
};

// One request row of a launch.
struct Row {
  std::vector<float> logits;  // [vocab]
  SamplingParams params;
  std::uint64_t seed = 0;
  std::int32_t output_index = 0;
  std::vector<std::int32_t> prompt;
  std::vector<std::int32_t> output;
  std::int32_t score_token = -1;  // >= 0: a score row (prompt logprobs)
};

struct GpuResult {
  std::vector<SampledTokenRow> rows;
  std::vector<float> logits;  // [rows, vocab] after the call
};

// One launch over `rows` (same vocab), on a workspace full of garbage.
GpuResult sample_on_gpu(const std::vector<Row>& rows, int vocab) {
  std::vector<float> logits;
  logits.reserve(rows.size() * static_cast<std::size_t>(vocab));
  std::vector<SamplingRowParams> params(rows.size());
  std::vector<std::int32_t> history;
  std::vector<SamplingLogitBias> bias;
  for (std::size_t r = 0; r < rows.size(); ++r) {
    const Row& row = rows[r];
    if (row.logits.size() != static_cast<std::size_t>(vocab))
      throw std::invalid_argument("row of the wrong vocab");
    logits.insert(logits.end(), row.logits.begin(), row.logits.end());
    SamplingRowParams& p = params[r];
    p.temperature = row.params.temperature;
    p.top_p = row.params.top_p;
    p.top_k = row.params.top_k;
    p.min_p = row.params.min_p;
    p.presence_penalty = row.params.presence_penalty;
    p.frequency_penalty = row.params.frequency_penalty;
    p.repetition_penalty = row.params.repetition_penalty;
    p.num_logprobs = row.params.num_logprobs;
    p.seed = row.seed;
    p.output_index = row.output_index;
    p.score_token = row.score_token;
    p.history_begin = static_cast<std::int32_t>(history.size());
    p.num_prompt = static_cast<std::int32_t>(row.prompt.size());
    p.num_output = static_cast<std::int32_t>(row.output.size());
    history.insert(history.end(), row.prompt.begin(), row.prompt.end());
    history.insert(history.end(), row.output.begin(), row.output.end());
    p.bias_begin = static_cast<std::int32_t>(bias.size());
    p.num_bias = static_cast<std::int32_t>(row.params.logit_bias.size());
    for (const LogitBias& entry : row.params.logit_bias) bias.push_back({entry.token, entry.bias});
  }
  const int num_rows = static_cast<int>(rows.size());
  DeviceArray<float> device_logits(logits);
  DeviceArray<SamplingRowParams> device_params(params);
  DeviceArray<std::int32_t> device_history(history);
  DeviceArray<SamplingLogitBias> device_bias(bias);
  DeviceArray<SampledTokenRow> device_out(rows.size());
  const std::size_t workspace_bytes = sample_tokens_cuda_workspace_bytes(num_rows, vocab);
  DeviceArray<unsigned char> workspace(workspace_bytes);
  cuda_ok(cudaMemset(workspace.data(), 0xa5, workspace_bytes), "cudaMemset");
  sample_tokens_cuda(device_logits.data(), device_params.data(),
                     history.empty() ? nullptr : device_history.data(),
                     bias.empty() ? nullptr : device_bias.data(), num_rows, vocab, workspace.data(),
                     workspace_bytes, device_out.data(), nullptr);
  cuda_ok(cudaDeviceSynchronize(), "sample_tokens_cuda");
  return {device_out.download(), device_logits.download()};
}

std::vector<float> random_logits(std::size_t vocab, std::mt19937_64& rng, float scale) {
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> logits(vocab);
  for (float& logit : logits) logit = normal(rng);
  return logits;
}

std::vector<float> logits_for(const std::vector<double>& probs) {
  std::vector<float> logits;
  for (const double p : probs) logits.push_back(p > 0.0 ? static_cast<float>(std::log(p)) : -kInf);
  return logits;
}

// log-sum-exp of the finite logits, in double.
double log_sum_exp(const std::vector<float>& logits) {
  double max_value = -std::numeric_limits<double>::infinity();
  for (const float x : logits) {
    if (std::isfinite(x)) max_value = std::max(max_value, static_cast<double>(x));
  }
  double total = 0.0;
  for (const float x : logits) {
    if (std::isfinite(x)) total += std::exp(static_cast<double>(x) - max_value);
  }
  return max_value + std::log(total);
}

// Ids by logit, most likely first, ties by lower id.
std::vector<std::int32_t> order_by_logit(const std::vector<float>& logits) {
  std::vector<std::int32_t> order(logits.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](std::int32_t a, std::int32_t b) { return logits[a] > logits[b]; });
  return order;
}

// The set top_k then top_p keep at temperature 1 (min_p off), with a relative slack on the
// top_p boundary for rounding: tokens whose mass before them is within it are allowed too.
std::set<std::int32_t> kept_set(const std::vector<float>& logits, int top_k, float top_p) {
  const std::vector<std::int32_t> order = order_by_logit(logits);
  const double max_value = logits[static_cast<std::size_t>(order[0])];
  const std::size_t k = top_k > 0 ? std::min(static_cast<std::size_t>(top_k), order.size()) : order.size();
  double mass_k = 0.0;
  for (std::size_t i = 0; i < k; ++i)
    mass_k += std::exp(logits[static_cast<std::size_t>(order[i])] - max_value);
  std::set<std::int32_t> kept;
  double before = 0.0;
  for (std::size_t i = 0; i < k; ++i) {
    if (top_p < 1.0f && before >= static_cast<double>(top_p) * mass_k * (1.0 + 1e-5)) break;
    kept.insert(order[i]);
    before += std::exp(logits[static_cast<std::size_t>(order[i])] - max_value);
  }
  return kept;
}

// Empirical frequencies against expected probabilities, within 5 standard deviations;
// probability 0 means never.
void expect_frequencies(const std::vector<int>& counts, const std::vector<double>& expected, int draws) {
  for (std::size_t i = 0; i < counts.size(); ++i) {
    if (expected[i] == 0.0) {
      EXPECT_EQ(counts[i], 0) << "token " << i << " must never be drawn";
      continue;
    }
    const double sigma = std::sqrt(draws * expected[i] * (1.0 - expected[i]));
    EXPECT_NEAR(counts[i], draws * expected[i], 5.0 * sigma + 1.0) << "token " << i;
  }
}

// Token counts over `draws` rows of the same logits, seeds 0..draws-1 in one launch.
std::vector<int> draw_counts(const std::vector<float>& logits, const SamplingParams& params, int draws) {
  std::vector<Row> rows(static_cast<std::size_t>(draws));
  for (int i = 0; i < draws; ++i) {
    Row& row = rows[static_cast<std::size_t>(i)];
    row.logits = logits;
    row.params = params;
    row.seed = static_cast<std::uint64_t>(i);
    row.output_index = i % 7;
  }
  const GpuResult result = sample_on_gpu(rows, static_cast<int>(logits.size()));
  std::vector<int> counts(logits.size(), 0);
  for (const SampledTokenRow& row : result.rows) {
    EXPECT_GE(row.token, 0);
    EXPECT_LT(row.token, static_cast<int>(logits.size()));
    if (row.token >= 0 && row.token < static_cast<int>(logits.size()))
      ++counts[static_cast<std::size_t>(row.token)];
  }
  return counts;
}

std::vector<double> normalised(std::vector<double> weights) {
  const double total = std::accumulate(weights.begin(), weights.end(), 0.0);
  for (double& w : weights) w /= total;
  return weights;
}

// History with duplicates, ids in both prompt and output, ids out of range, and the most likely
// tokens repeated in the output so that penalties change the argmax.
void add_history(Row& row, std::mt19937_64& rng, int vocab) {
  std::uniform_int_distribution<std::int32_t> any(0, vocab - 1);
  const std::vector<std::int32_t> order = order_by_logit(row.logits);
  for (int i = 0; i < 3000; ++i) row.prompt.push_back(any(rng) % std::max(vocab / 3, 1));  // many duplicates
  for (int i = 0; i < 500; ++i) row.output.push_back(any(rng) % std::max(vocab / 4, 1));
  for (int i = 0; i < 8; ++i) {
    for (int repeat = 0; repeat <= i; ++repeat) row.output.push_back(order[static_cast<std::size_t>(i)]);
    row.prompt.push_back(order[static_cast<std::size_t>(i + 4)]);
  }
  row.prompt.insert(row.prompt.end(), {-1, vocab, vocab + 7});
  row.output.insert(row.output.end(), {-5, vocab + 1});
  std::shuffle(row.output.begin(), row.output.end(), rng);
}

// Row r of the GPU's logits (what the pipeline leaves: biased and penalised, not divided by the
// temperature) times inverse_temperature against the CPU Sampler's processed logits, bit for bit.
void expect_logits_as_cpu(const GpuResult& gpu, std::size_t r, std::span<const float> processed, int vocab,
                          float inverse_temperature) {
  int mismatches = 0;
  for (int i = 0; i < vocab; ++i) {
    const float got = gpu.logits[r * static_cast<std::size_t>(vocab) + static_cast<std::size_t>(i)];
    const float want = processed[static_cast<std::size_t>(i)];
    if (got * inverse_temperature != want && mismatches++ < 3) {
      ADD_FAILURE() << "logit " << i << ": gpu " << got << " cpu " << want;
    }
  }
  EXPECT_EQ(mismatches, 0);
}

void expect_same_top_logprobs(const SampledTokenRow& gpu, const SampledToken& cpu, int num_logprobs) {
  ASSERT_EQ(cpu.top_logprobs.size(), static_cast<std::size_t>(num_logprobs));
  for (int j = 0; j < num_logprobs; ++j) {
    EXPECT_EQ(gpu.top_ids[j], cpu.top_logprobs[static_cast<std::size_t>(j)].first) << "rank " << j;
    EXPECT_NEAR(gpu.top_logprobs[j], cpu.top_logprobs[static_cast<std::size_t>(j)].second, 1e-4)
        << "rank " << j;
  }
  for (int j = num_logprobs; j < kMaxSampleLogprobs; ++j) EXPECT_EQ(gpu.top_ids[j], -1);
}

// Score rows (prompt logprobs) between random sampling rows of one launch: each reports its given
// token, not a draw, with score_token()'s raw logprob, rank (ties included) and top-N; the
// sampling rows beside them are unaffected (their logprobs are still their own tokens').
TEST(SamplingCuda, ScoreRowsReportTheGivenTokenAsScoreToken) {
  SKIP_WITHOUT_CUDA_DEVICE();
  std::mt19937_64 rng(1414);
  for (const int vocab : {151936, 1000}) {
    SCOPED_TRACE("vocab " + std::to_string(vocab));
    std::vector<Row> rows;
    for (int r = 0; r < 9; ++r) {
      Row row;
      row.logits = random_logits(static_cast<std::size_t>(vocab), rng, 3.0f);
      row.seed = rng();
      row.params.num_logprobs = r % 3 == 0 ? 0 : (r % 3 == 1 ? 5 : 20);
      if (r % 3 != 2) {
        const std::vector<std::int32_t> order = order_by_logit(row.logits);
        // The most likely id, one of middling rank, the least likely one; some with exact ties.
        const std::size_t pick = r == 0   ? 0
                                 : r == 1 ? 37
                                 : r == 3 ? order.size() - 1
                                          : std::size_t(rng() % 500);
        row.score_token = order[pick];
        if (r == 4)
          row.logits[static_cast<std::size_t>(order[pick + 1])] =
              row.logits[static_cast<std::size_t>(row.score_token)];
        row.params.temperature = 0.0f;  // what the runner stages for a score row
      } else {
        row.params.temperature = 0.8f;  // a sampling row beside them
      }
      rows.push_back(std::move(row));
    }
    const GpuResult gpu = sample_on_gpu(rows, vocab);
    for (std::size_t r = 0; r < rows.size(); ++r) {
      SCOPED_TRACE("row " + std::to_string(r));
      const Row& row = rows[r];
      if (row.score_token < 0) {
        const int token = gpu.rows[r].token;
        ASSERT_GE(token, 0);
        ASSERT_LT(token, vocab);
        EXPECT_NEAR(gpu.rows[r].logprob,
                    row.logits[static_cast<std::size_t>(token)] - log_sum_exp(row.logits), 1e-4);
        EXPECT_EQ(gpu.rows[r].rank, 0);
        continue;
      }
      const ScoredToken cpu = score_token(row.logits, row.score_token, row.params.num_logprobs);
      EXPECT_EQ(gpu.rows[r].token, row.score_token);
      EXPECT_NEAR(gpu.rows[r].logprob, cpu.logprob, 1e-4);
      EXPECT_EQ(gpu.rows[r].rank, cpu.rank);
      SampledToken as_sampled;
      as_sampled.top_logprobs = cpu.top_logprobs;
      expect_same_top_logprobs(gpu.rows[r], as_sampled, row.params.num_logprobs);
    }
    EXPECT_EQ(gpu.rows[0].rank, 1);
    EXPECT_EQ(gpu.rows[3].rank, vocab);
  }
}

TEST(SamplingCuda, NoRowsDoesNothing) {
  EXPECT_EQ(sample_tokens_cuda_workspace_bytes(0, 151936), 0u);
  EXPECT_GE(sample_tokens_cuda_workspace_bytes(2, 151936), 2u * 151936u * sizeof(std::int32_t));
  EXPECT_NO_THROW(
      sample_tokens_cuda(nullptr, nullptr, nullptr, nullptr, 0, 151936, nullptr, 0, nullptr, nullptr));
}

TEST(SamplingCuda, GreedyMatchesCpuSamplerWithPenalties) {
  SKIP_WITHOUT_CUDA_DEVICE();
  std::mt19937_64 rng(20240611);
  for (const int vocab : {151936, 50257, 1000}) {
    SCOPED_TRACE("vocab " + std::to_string(vocab));
    struct Penalties {
      float repetition, frequency, presence;
    };
    const std::vector<Penalties> settings = {{1.0f, 0.0f, 0.0f},  {1.3f, 0.0f, 0.0f}, {1.0f, 0.5f, 0.3f},
                                             {1.2f, 0.7f, -0.4f}, {0.8f, 0.0f, 0.0f}, {1.0f, 2.0f, 0.0f}};
    std::vector<Row> rows;
    for (const Penalties& penalties : settings) {
      Row row;
      row.logits = random_logits(static_cast<std::size_t>(vocab), rng, 3.0f);
      row.params.temperature = 0.0f;
      row.params.repetition_penalty = penalties.repetition;
      row.params.frequency_penalty = penalties.frequency;
      row.params.presence_penalty = penalties.presence;
      row.params.num_logprobs = 20;
      row.seed = rng();
      add_history(row, rng, vocab);
      rows.push_back(std::move(row));
    }
    const GpuResult gpu = sample_on_gpu(rows, vocab);
    for (std::size_t r = 0; r < rows.size(); ++r) {
      SCOPED_TRACE("row " + std::to_string(r));
      Sampler sampler(rows[r].params);
      const SampledToken cpu = sampler.sample(rows[r].logits, rows[r].prompt, rows[r].output);
      EXPECT_EQ(gpu.rows[r].token, cpu.token);
      EXPECT_NEAR(gpu.rows[r].logprob, cpu.logprob, 1e-4);
      expect_same_top_logprobs(gpu.rows[r], cpu, 20);
      // The penalised logits, bit for bit.
      expect_logits_as_cpu(gpu, r, sampler.processed_logits(), vocab, 1.0f);
    }
    // The penalties did change some argmax (else this test proves little).
    int changed = 0;
    for (std::size_t r = 1; r < rows.size(); ++r) {
      changed += gpu.rows[r].token != order_by_logit(rows[r].logits)[0] ? 1 : 0;
    }
    EXPECT_GT(changed, 0);
  }
}

// logit_bias on ids of the history (bias and penalty both apply), on the most likely ids (-100
// bans the argmax) and on unlikely ones (+100 forces one), alone and with penalties, greedy and
// random: the biased logits bit for bit, the tokens of greedy rows, and raw (unbiased) logprobs.
TEST(SamplingCuda, LogitBiasMatchesCpuSampler) {
  SKIP_WITHOUT_CUDA_DEVICE();
  std::mt19937_64 rng(4242);
  for (const int vocab : {151936, 1000}) {
    SCOPED_TRACE("vocab " + std::to_string(vocab));
    std::vector<Row> rows;
    for (int r = 0; r < 8; ++r) {
      Row row;
      row.logits = random_logits(static_cast<std::size_t>(vocab), rng, 3.0f);
      row.params.temperature = r % 2 == 0 ? 0.0f : 0.8f;
      row.params.top_k = r % 4 == 1 ? 50 : -1;
      row.params.repetition_penalty = r >= 4 ? 1.2f : 1.0f;
      row.params.frequency_penalty = r >= 6 ? 0.5f : 0.0f;
      row.params.num_logprobs = 5;
      row.seed = rng();
      row.output_index = r;
      if (r >= 4) add_history(row, rng, vocab);
      const std::vector<std::int32_t> order = order_by_logit(row.logits);
      std::vector<LogitBias> bias;
      bias.push_back({order[0], -100.0f});  // bans the argmax
      if (r % 3 == 0) bias.push_back({order[static_cast<std::size_t>(vocab / 2)], 100.0f});  // forces one
      for (int j = 1; j < 40; ++j) {
        const float b = std::uniform_real_distribution<float>(-5.0f, 5.0f)(rng);
        bias.push_back({order[static_cast<std::size_t>(j)], b});
        if (!row.output.empty())
          bias.push_back({row.output[static_cast<std::size_t>(j) % row.output.size()], b});
      }
      std::sort(bias.begin(), bias.end(),
                [](const LogitBias& a, const LogitBias& b) { return a.token < b.token; });
      for (const LogitBias& entry : bias) {
        if (entry.token < 0 || entry.token >= vocab) continue;
        if (row.params.logit_bias.empty() || row.params.logit_bias.back().token != entry.token)
          row.params.logit_bias.push_back(entry);
      }
      ASSERT_EQ(Sampler::validation_error(row.params), "");
      rows.push_back(std::move(row));
    }
    const GpuResult gpu = sample_on_gpu(rows, vocab);
    for (std::size_t r = 0; r < rows.size(); ++r) {
      SCOPED_TRACE("row " + std::to_string(r));
      Sampler sampler(rows[r].params);
      const SampledToken cpu = sampler.sample(rows[r].logits, rows[r].prompt, rows[r].output);
      const int token = gpu.rows[r].token;
      ASSERT_GE(token, 0);
      ASSERT_LT(token, vocab);
      if (rows[r].params.temperature == 0.0f) {
        EXPECT_EQ(token, cpu.token);
      }
      EXPECT_NE(token, order_by_logit(rows[r].logits)[0]) << "a -100 bias must ban the argmax";
      expect_same_top_logprobs(gpu.rows[r], cpu, rows[r].params.num_logprobs);  // raw: before the bias
      EXPECT_NEAR(gpu.rows[r].logprob,
                  rows[r].logits[static_cast<std::size_t>(token)] - log_sum_exp(rows[r].logits), 1e-4);
      const float inverse_temperature =
          rows[r].params.temperature == 0.0f ? 1.0f : 1.0f / rows[r].params.temperature;
      expect_logits_as_cpu(gpu, r, sampler.processed_logits(), vocab, inverse_temperature);
    }
  }
}

TEST(SamplingCuda, RandomRowsReportRawLogprobsAndPenalisedLogits) {
  SKIP_WITHOUT_CUDA_DEVICE();
  std::mt19937_64 rng(77);
  const int vocab = 50257;
  std::vector<Row> rows;
  for (int r = 0; r < 8; ++r) {
    Row row;
    row.logits = random_logits(static_cast<std::size_t>(vocab), rng, 2.0f);
    row.params.temperature = 0.6f + 0.1f * static_cast<float>(r);
    row.params.top_p = r % 2 == 0 ? 0.9f : 1.0f;
    row.params.top_k = r % 3 == 0 ? 100 : -1;
    row.params.repetition_penalty = r % 4 == 0 ? 1.0f : 1.15f;
    row.params.frequency_penalty = 0.25f;
    row.params.num_logprobs = r % 2 == 0 ? 20 : 5;
    row.seed = rng();
    row.output_index = r;
    add_history(row, rng, vocab);
    rows.push_back(std::move(row));
  }
  const GpuResult gpu = sample_on_gpu(rows, vocab);
  for (std::size_t r = 0; r < rows.size(); ++r) {
    SCOPED_TRACE("row " + std::to_string(r));
    Sampler sampler(rows[r].params);
    const SampledToken cpu = sampler.sample(rows[r].logits, rows[r].prompt, rows[r].output);
    expect_same_top_logprobs(gpu.rows[r], cpu, rows[r].params.num_logprobs);
    const int token = gpu.rows[r].token;
    ASSERT_GE(token, 0);
    ASSERT_LT(token, vocab);
    EXPECT_NEAR(gpu.rows[r].logprob,
                rows[r].logits[static_cast<std::size_t>(token)] - log_sum_exp(rows[r].logits), 1e-4);
    // The GPU leaves the penalised logits; the CPU's processed ones are also divided by temperature.
    const float inverse_temperature = 1.0f / rows[r].params.temperature;
    expect_logits_as_cpu(gpu, r, sampler.processed_logits(), vocab, inverse_temperature);
  }
}

TEST(SamplingCuda, TemperatureFollowsSoftmax) {
  SKIP_WITHOUT_CUDA_DEVICE();
  const std::vector<double> probs = {0.4, 0.25, 0.15, 0.1, 0.06, 0.04};
  const int draws = 20000;
  SamplingParams params;
  expect_frequencies(draw_counts(logits_for(probs), params, draws), probs, draws);
  for (const float temperature : {0.5f, 2.0f}) {
    SCOPED_TRACE("temperature " + std::to_string(temperature));
    params.temperature = temperature;
    std::vector<double> expected;
    for (const double p : probs) expected.push_back(std::pow(p, 1.0 / temperature));
    expect_frequencies(draw_counts(logits_for(probs), params, draws), normalised(expected), draws);
  }
}

TEST(SamplingCuda, TopKRestrictsAndRenormalises) {
  SKIP_WITHOUT_CUDA_DEVICE();
  const int draws = 20000;
  SamplingParams params;
  params.top_k = 3;  // tokens 1, 3, 4
  expect_frequencies(draw_counts(logits_for({0.05, 0.4, 0.1, 0.25, 0.15, 0.05}), params, draws),
                     {0.0, 0.5, 0.0, 0.3125, 0.1875, 0.0}, draws);
  params.top_k = 2;  // a tie at the boundary: the lower id stays
  expect_frequencies(draw_counts(logits_for({0.3, 0.2, 0.2, 0.2, 0.1}), params, draws),
                     {0.6, 0.4, 0.0, 0.0, 0.0}, draws);
  params.top_k = 1;
  expect_frequencies(draw_counts(logits_for({0.3, 0.2, 0.3, 0.2}), params, 1000), {1.0, 0.0, 0.0, 0.0}, 1000);
}

TEST(SamplingCuda, TopPKeepsTheSmallestSetReachingP) {
  SKIP_WITHOUT_CUDA_DEVICE();
  const std::vector<double> probs = {0.15, 0.5, 0.05, 0.3};
  const int draws = 20000;
  SamplingParams params;
  params.top_p = 0.75f;  // 0.5 + 0.3 reaches it: tokens 1 and 3
  expect_frequencies(draw_counts(logits_for(probs), params, draws), {0.0, 0.625, 0.0, 0.375}, draws);
  params.top_p = 0.85f;  // needs 0.15 too
  expect_frequencies(draw_counts(logits_for(probs), params, draws),
                     {0.15 / 0.95, 0.5 / 0.95, 0.0, 0.3 / 0.95}, draws);
  params.top_p = 0.01f;  // always the most likely
  expect_frequencies(draw_counts(logits_for(probs), params, 1000), {0.0, 1.0, 0.0, 0.0}, 1000);
}

TEST(SamplingCuda, MinPDropsUnlikelyTokens) {
  SKIP_WITHOUT_CUDA_DEVICE();
  const int draws = 20000;
  SamplingParams params;
  params.min_p = 0.2f;  // keep p >= 0.1
  expect_frequencies(draw_counts(logits_for({0.5, 0.3, 0.15, 0.05}), params, draws),
                     {0.5 / 0.95, 0.3 / 0.95, 0.15 / 0.95, 0.0}, draws);
}

TEST(SamplingCuda, MinPThenTopKThenTopP) {
  SKIP_WITHOUT_CUDA_DEVICE();
  const int draws = 20000;
  SamplingParams params;
  params.min_p = 0.2f;  // keep p >= 0.07: tokens 0..4
  params.top_k = 4;     // tokens 0..3, mass 0.87
  params.top_p = 0.7f;  // target 0.609: 0.35 + 0.25 = 0.6 is below it, so token 2 stays
  expect_frequencies(draw_counts(logits_for({0.35, 0.25, 0.15, 0.12, 0.08, 0.05, 0.0}), params, draws),
                     {0.35 / 0.75, 0.25 / 0.75, 0.15 / 0.75, 0.0, 0.0, 0.0, 0.0}, draws);
}

// A real-sized vocabulary, one heterogeneous launch: every draw must come from the set a full
// sort defines.
TEST(SamplingCuda, LargeVocabularyDrawsStayInTheKeptSet) {
  SKIP_WITHOUT_CUDA_DEVICE();
  std::mt19937_64 rng(4242);
  const int vocab = 151936;
  const std::vector<float> logits = random_logits(static_cast<std::size_t>(vocab), rng, 2.0f);
  struct Config {
    float top_p;
    int top_k;
  };
  const std::vector<Config> configs = {{0.3f, -1}, {0.9f, -1},   {1.0f, -1},   {0.3f, 50},  {0.9f, 50},
                                       {1.0f, 50}, {0.3f, 5000}, {0.9f, 5000}, {1.0f, 5000}};
  const int per_config = 24;
  std::vector<Row> rows;
  for (const Config& config : configs) {
    for (int i = 0; i < per_config; ++i) {
      Row row;
      row.logits = logits;
      row.params.top_p = config.top_p;
      row.params.top_k = config.top_k;
      row.seed = rng();
      row.output_index = i;
      rows.push_back(std::move(row));
    }
  }
  const GpuResult gpu = sample_on_gpu(rows, vocab);
  for (std::size_t c = 0; c < configs.size(); ++c) {
    SCOPED_TRACE("top_p " + std::to_string(configs[c].top_p) + " top_k " + std::to_string(configs[c].top_k));
    const std::set<std::int32_t> allowed = kept_set(logits, configs[c].top_k, configs[c].top_p);
    std::set<std::int32_t> seen;
    for (int i = 0; i < per_config; ++i) {
      const int token = gpu.rows[c * per_config + static_cast<std::size_t>(i)].token;
      EXPECT_TRUE(allowed.count(token)) << "token " << token << " outside the kept set";
      seen.insert(token);
    }
    EXPECT_GT(seen.size(), 1u);
  }
}

// Ties and near-ties put more tokens in one histogram bin than a block sorts: the narrowing
// passes must still give the exact order (value, then lower id).
TEST(SamplingCuda, CrowdedBinsKeepTheExactOrder) {
  SKIP_WITHOUT_CUDA_DEVICE();
  const int vocab = 151936;
  std::mt19937_64 rng(99);
  const std::vector<float> constant(static_cast<std::size_t>(vocab), 1.5f);
  std::vector<float> narrow = random_logits(static_cast<std::size_t>(vocab), rng, 1e-3f);
  for (float& x : narrow) x += 1.0f;
  narrow[12345] = -80.0f;  // stretches the value range: the rest crowds a few bins
  std::vector<float> plateau(static_cast<std::size_t>(vocab), -1.0f);
  for (int i = 0; i < 100000; ++i)
    plateau[static_cast<std::size_t>(i) * 3 % static_cast<std::size_t>(vocab)] = 0.0f;

  struct Case {
    const std::vector<float>* logits;
    float temperature, top_p;
    int top_k;
  };
  const std::vector<Case> cases = {{&constant, 0.0f, 1.0f, -1},  {&constant, 1.0f, 1.0f, 50},
                                   {&constant, 1.0f, 0.5f, -1},  {&narrow, 0.0f, 1.0f, -1},
                                   {&narrow, 1.0f, 0.3f, -1},    {&narrow, 1.0f, 1.0f, 3000},
                                   {&plateau, 1.0f, 1.0f, 70000}};
  const int per_case = 32;
  std::vector<Row> rows;
  for (const Case& c : cases) {
    for (int i = 0; i < per_case; ++i) {
      Row row;
      row.logits = *c.logits;
      row.params.temperature = c.temperature;
      row.params.top_p = c.top_p;
      row.params.top_k = c.top_k;
      row.params.num_logprobs = 20;
      row.seed = rng();
      rows.push_back(std::move(row));
    }
  }
  const GpuResult gpu = sample_on_gpu(rows, vocab);
  for (std::size_t c = 0; c < cases.size(); ++c) {
    SCOPED_TRACE("case " + std::to_string(c));
    const std::vector<float>& logits = *cases[c].logits;
    const std::vector<std::int32_t> order = order_by_logit(logits);
    std::set<std::int32_t> allowed;
    if (cases[c].temperature == 0.0f) {
      allowed = {order[0]};
    } else {
      allowed = kept_set(logits, cases[c].top_k, cases[c].top_p);
    }
    Sampler sampler(rows[c * per_case].params);
    const SampledToken cpu = sampler.sample(logits, {}, {});
    std::set<std::int32_t> seen;
    for (int i = 0; i < per_case; ++i) {
      const SampledTokenRow& row = gpu.rows[c * per_case + static_cast<std::size_t>(i)];
      EXPECT_TRUE(allowed.count(row.token)) << "token " << row.token;
      seen.insert(row.token);
      if (i == 0) expect_same_top_logprobs(row, cpu, 20);
    }
    if (allowed.size() > 1) {
      EXPECT_GT(seen.size(), 1u);
    }
  }
  // The reference set itself: ties keep the lower ids.
  const std::set<std::int32_t> first_fifty = kept_set(constant, 50, 1.0f);
  EXPECT_EQ(first_fifty.size(), 50u);
  EXPECT_EQ(*first_fifty.rbegin(), 49);
}

TEST(SamplingCuda, SameSeedAndIndexGiveTheSameTokenAnywhereInTheBatch) {
  SKIP_WITHOUT_CUDA_DEVICE();
  std::mt19937_64 rng(5);
  const int vocab = 1000;
  Row target;
  target.logits = random_logits(static_cast<std::size_t>(vocab), rng, 0.5f);
  target.params.top_p = 0.95f;
  target.seed = 42;
  target.output_index = 3;
  const auto other = [&](int i) {
    Row row;
    row.logits = random_logits(static_cast<std::size_t>(vocab), rng, 1.0f + static_cast<float>(i % 3));
    row.params.temperature = 0.5f + 0.1f * static_cast<float>(i % 5);
    row.params.top_k = i % 2 == 0 ? 20 : -1;
    row.params.frequency_penalty = i % 3 == 0 ? 0.5f : 0.0f;
    row.output = {1, 2, 3, 3};
    row.seed = rng();
    row.output_index = i;
    return row;
  };
  std::vector<Row> first = {target};
  for (int i = 0; i < 15; ++i) first.push_back(other(i));
  std::vector<Row> second;
  for (int i = 0; i < 40; ++i) second.push_back(i == 29 ? target : other(i));

  const GpuResult a = sample_on_gpu(first, vocab);
  const GpuResult again = sample_on_gpu(first, vocab);
  const GpuResult b = sample_on_gpu(second, vocab);
  for (std::size_t r = 0; r < first.size(); ++r)
    EXPECT_EQ(a.rows[r].token, again.rows[r].token) << "row " << r;
  EXPECT_EQ(a.rows[0].token, b.rows[29].token);

  // Another output_index (or seed) is another draw.
  std::vector<Row> positions;
  for (int i = 0; i < 200; ++i) {
    Row row = target;
    row.output_index = i;
    if (i >= 100) {
      row.output_index = 3;
      row.seed = 1000 + static_cast<std::uint64_t>(i);
    }
    positions.push_back(std::move(row));
  }
  const GpuResult drawn = sample_on_gpu(positions, vocab);
  std::set<std::int32_t> by_index;
  std::set<std::int32_t> by_seed;
  for (int i = 0; i < 200; ++i)
    (i < 100 ? by_index : by_seed).insert(drawn.rows[static_cast<std::size_t>(i)].token);
  EXPECT_GT(by_index.size(), 30u);
  EXPECT_GT(by_seed.size(), 30u);
  EXPECT_EQ(drawn.rows[3].token, a.rows[0].token);
}

TEST(SamplingCuda, NonFiniteLogitsFollowTheCpuSampler) {
  SKIP_WITHOUT_CUDA_DEVICE();
  std::mt19937_64 rng(8);
  const int vocab = 1000;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> holes = random_logits(static_cast<std::size_t>(vocab), rng, 2.0f);
  for (int i = 0; i < vocab; i += 7) holes[static_cast<std::size_t>(i)] = nan;
  for (int i = 3; i < vocab; i += 11) holes[static_cast<std::size_t>(i)] = -kInf;
  const std::vector<float> all_nan(static_cast<std::size_t>(vocab), nan);
  const std::vector<float> all_negative_infinity(static_cast<std::size_t>(vocab), -kInf);
  std::vector<float> two_infinities = random_logits(static_cast<std::size_t>(vocab), rng, 1.0f);
  two_infinities[17] = kInf;
  two_infinities[500] = kInf;
  std::vector<float> one_finite(static_cast<std::size_t>(vocab), -kInf);
  one_finite[999] = 0.5f;

  std::vector<Row> rows;
  const std::vector<const std::vector<float>*> inputs = {&holes, &all_nan, &all_negative_infinity,
                                                         &two_infinities, &one_finite};
  for (const std::vector<float>* logits : inputs) {
    for (const float temperature : {0.0f, 1.0f}) {
      for (const float top_p : {1.0f, 0.5f}) {
        Row row;
        row.logits = *logits;
        row.params.temperature = temperature;
        row.params.top_p = top_p;
        row.params.num_logprobs = 3;
        row.seed = rng();
        rows.push_back(std::move(row));
      }
    }
  }
  const GpuResult gpu = sample_on_gpu(rows, vocab);
  for (std::size_t r = 0; r < rows.size(); ++r) {
    SCOPED_TRACE("row " + std::to_string(r));
    const int token = gpu.rows[r].token;
    ASSERT_GE(token, 0);
    ASSERT_LT(token, vocab);
    Sampler sampler(rows[r].params);
    const SampledToken cpu = sampler.sample(rows[r].logits, {}, {});
    const std::vector<float>& logits = rows[r].logits;
    const bool any_finite =
        std::any_of(logits.begin(), logits.end(), [](float x) { return std::isfinite(x); });
    const bool any_positive_infinity =
        std::any_of(logits.begin(), logits.end(), [](float x) { return x == kInf; });
    if (rows[r].params.temperature == 0.0f || !any_finite || any_positive_infinity) {
      EXPECT_EQ(token, cpu.token);  // deterministic on both
    } else {
      EXPECT_TRUE(std::isfinite(logits[static_cast<std::size_t>(token)])) << "token " << token;
    }
  }
}

// Not a check: what a step costs on this device (64 rows of a 151936 vocabulary).
TEST(SamplingCuda, ReportsTiming) {
  SKIP_WITHOUT_CUDA_DEVICE();
  std::mt19937_64 rng(1);
  const int vocab = 151936;
  const int num_rows = 64;
  std::vector<float> logits;
  for (int r = 0; r < num_rows; ++r) {
    const std::vector<float> row = random_logits(static_cast<std::size_t>(vocab), rng, 3.0f);
    logits.insert(logits.end(), row.begin(), row.end());
  }
  DeviceArray<float> device_logits(logits);
  DeviceArray<SampledTokenRow> out(static_cast<std::size_t>(num_rows));
  const std::size_t workspace_bytes = sample_tokens_cuda_workspace_bytes(num_rows, vocab);
  DeviceArray<unsigned char> workspace(workspace_bytes);
  struct Setting {
    const char* name;
    float temperature, top_p;
    int top_k, num_logprobs;
  };
  for (const Setting& setting :
       {Setting{"greedy", 0.0f, 1.0f, -1, 0}, Setting{"temperature 1", 1.0f, 1.0f, -1, 0},
        Setting{"top_k 50 top_p 0.9 + 20 logprobs", 0.8f, 0.9f, 50, 20},
        Setting{"top_p 0.95", 1.0f, 0.95f, -1, 0}}) {
    std::vector<SamplingRowParams> params(static_cast<std::size_t>(num_rows));
    for (int r = 0; r < num_rows; ++r) {
      SamplingRowParams& p = params[static_cast<std::size_t>(r)];
      p.temperature = setting.temperature;
      p.top_p = setting.top_p;
      p.top_k = setting.top_k;
      p.num_logprobs = setting.num_logprobs;
      p.seed = static_cast<std::uint64_t>(r);
    }
    DeviceArray<SamplingRowParams> device_params(params);
    const auto launch = [&] {
      sample_tokens_cuda(device_logits.data(), device_params.data(), nullptr, nullptr, num_rows, vocab,
                         workspace.data(), workspace_bytes, out.data(), nullptr);
    };
    launch();
    cuda_ok(cudaDeviceSynchronize(), "warm-up");
    cudaEvent_t start, stop;
    cuda_ok(cudaEventCreate(&start), "cudaEventCreate");
    cuda_ok(cudaEventCreate(&stop), "cudaEventCreate");
    const int repeats = 20;
    cuda_ok(cudaEventRecord(start), "cudaEventRecord");
    for (int i = 0; i < repeats; ++i) launch();
    cuda_ok(cudaEventRecord(stop), "cudaEventRecord");
    cuda_ok(cudaEventSynchronize(stop), "cudaEventSynchronize");
    float ms = 0.0f;
    cuda_ok(cudaEventElapsedTime(&ms, start, stop), "cudaEventElapsedTime");
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    std::cout << "sample_tokens_cuda " << num_rows << " x " << vocab << " " << setting.name << ": "
              << 1000.0f * ms / repeats << " us\n";
  }
}

}  // namespace
}  // namespace pagedserve
