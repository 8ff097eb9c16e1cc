#include "model/sampler.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>

namespace pagedserve {
namespace {

constexpr float kNegativeInfinity = -std::numeric_limits<float>::infinity();

// Most likely first (by logit or weight); ties by lower id, so every order is total and reproducible.
bool more_likely(const std::pair<float, std::int32_t>& a, const std::pair<float, std::int32_t>& b) {
  return a.first > b.first || (a.first == b.first && a.second < b.second);
}

// e^x for x <= 0, relative error ~2e-7; 0 below -87 and for NaN. Written with GCC/Clang vector
// extensions (4 lanes, SSE2 at least) because libm's exp, one call per token, was most of the
// sampler's time and a plain loop does not vectorise (the range checks are branches under the
// default -ftrapping-math).
using Float4 = float __attribute__((vector_size(16)));
using Int4 = std::int32_t __attribute__((vector_size(16)));

// e^(x - max_value) for four lanes: relative probabilities, 0 for -inf and NaN.
inline Float4 relative_weights4(Float4 x, float max_value) {
  x -= max_value;
  const Int4 keep = x >= -87.0f;  // all ones where e^x is representable; NaN fails
  x = reinterpret_cast<Float4>(reinterpret_cast<Int4>(x) & keep);  // masked lanes: 0, safe below
  const Int4 exponent = __builtin_convertvector(x * 1.44269504088896341f - 0.5f, Int4);  // round, x <= 0
  const Float4 k = __builtin_convertvector(exponent, Float4);
  const Float4 r = (x - k * 0.693145751953125f) - k * 1.428606765330187e-6f;  // |r| <= ln2 / 2
  Float4 p = r * 1.9875691500e-4f + 1.3981999507e-3f;                         // minimax polynomial of e^r
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const Float4 scale = reinterpret_cast<Float4>((exponent + 127) << 23);
  return reinterpret_cast<Float4>(reinterpret_cast<Int4>(p * scale) & keep);
}

// weights[i] = e^(values[i] - max_value).
void relative_weights(std::span<const float> values, float max_value, std::vector<float>& weights) {
  const std::size_t n = values.size();
  weights.resize(n);
  std::size_t i = 0;
  for (; i + 4 <= n; i += 4) {  // fixed-size copies compile to plain vector loads and stores
    Float4 x;
    std::memcpy(&x, values.data() + i, sizeof(x));
    const Float4 weight = relative_weights4(x, max_value);
    std::memcpy(weights.data() + i, &weight, sizeof(weight));
  }
  if (i < n) {
    Float4 x = {0.0f, 0.0f, 0.0f, 0.0f};
    std::memcpy(&x, values.data() + i, (n - i) * sizeof(float));
    const Float4 weight = relative_weights4(x, max_value);
    std::memcpy(weights.data() + i, &weight, (n - i) * sizeof(float));
  }
}

// Four double partial sums: independent chains keep the adds pipelined.
double sum_weights(const std::vector<float>& weights) {
  double partial[4] = {0.0, 0.0, 0.0, 0.0};
  const std::size_t n = weights.size();
  std::size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    for (std::size_t lane = 0; lane < 4; ++lane) partial[lane] += weights[i + lane];
  }
  for (; i < n; ++i) partial[0] += weights[i];
  return (partial[0] + partial[1]) + (partial[2] + partial[3]);
}

// The largest value, ignoring NaN (-inf when there is none). Four lanes: a plain loop over
// std::max keeps its running maximum in memory and crawls along one dependency chain.
float max_value(std::span<const float> values) {
  const std::size_t n = values.size();
  Float4 lanes = {kNegativeInfinity, kNegativeInfinity, kNegativeInfinity, kNegativeInfinity};
  std::size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    Float4 x;
    std::memcpy(&x, values.data() + i, sizeof(x));
    lanes = x > lanes ? x : lanes;  // NaN is never greater
  }
  float result = kNegativeInfinity;
  for (int lane = 0; lane < 4; ++lane) result = lanes[lane] > result ? lanes[lane] : result;
  for (; i < n; ++i) result = values[i] > result ? values[i] : result;
  return result;
}

// The first index holding the largest value (0 when nothing compares, e.g. all NaN).
std::int32_t argmax(std::span<const float> values) {
  const float best = max_value(values);
  const auto it = std::find(values.begin(), values.end(), best);
  return it == values.end() ? 0 : static_cast<std::int32_t>(it - values.begin());
}

// The n largest raw logits as (token, logprob), most likely first; one pass with a size-n heap.
std::vector<std::pair<std::int32_t, float>> top_logprobs(std::span<const float> logits, int n, double lse) {
  std::vector<std::pair<float, std::int32_t>> heap;  // min-heap under more_likely: worst on top
  heap.reserve(static_cast<std::size_t>(n) + 1);
  for (std::size_t i = 0; i < logits.size(); ++i) {
    if (!(logits[i] == logits[i])) continue;
    const std::pair<float, std::int32_t> item{logits[i], static_cast<std::int32_t>(i)};
    if (static_cast<int>(heap.size()) < n) {
      heap.push_back(item);
      std::push_heap(heap.begin(), heap.end(), more_likely);
    } else if (more_likely(item, heap.front())) {
      std::pop_heap(heap.begin(), heap.end(), more_likely);
      heap.back() = item;
      std::push_heap(heap.begin(), heap.end(), more_likely);
    }
  }
  std::sort(heap.begin(), heap.end(), more_likely);
  std::vector<std::pair<std::int32_t, float>> result;
  result.reserve(heap.size());
  for (const auto& [logit, token] : heap) result.emplace_back(token, static_cast<float>(logit - lse));
  return result;
}

// The raw logits' log-sum-exp (the log-softmax's offset); `weights` is scratch.
double log_sum_exp(std::span<const float> logits, std::vector<float>& weights) {
  const float raw_max = max_value(logits);
  if (std::isfinite(raw_max)) {
    relative_weights(logits, raw_max, weights);
    return raw_max + std::log(sum_weights(weights));
  }
  // An infinite logit takes all the mass; nothing finite: -inf.
  return raw_max > 0.0f ? static_cast<double>(raw_max) : -std::numeric_limits<double>::infinity();
}

std::uint64_t initial_seed(const SamplingParams& params) {
  if (params.seed) return *params.seed;
  std::random_device device;  // 32 bits a draw: two draws for a 64-bit seed
  return (static_cast<std::uint64_t>(device()) << 32) ^ device();
}

}  // namespace

std::string Sampler::validation_error(const SamplingParams& params) {
  if (!(params.temperature >= 0.0f) || !std::isfinite(params.temperature)) return "temperature must be >= 0";
  if (!(params.top_p > 0.0f && params.top_p <= 1.0f)) return "top_p must be in (0, 1]";
  if (params.top_k < -1) return "top_k must be -1 (off) or positive";
  if (!(params.min_p >= 0.0f && params.min_p <= 1.0f)) return "min_p must be in [0, 1]";
  if (!std::isfinite(params.presence_penalty) || std::fabs(params.presence_penalty) > 2.0f) {
    return "presence_penalty must be in [-2, 2]";
  }
  if (!std::isfinite(params.frequency_penalty) || std::fabs(params.frequency_penalty) > 2.0f) {
    return "frequency_penalty must be in [-2, 2]";
  }
  if (!(params.repetition_penalty > 0.0f) || !std::isfinite(params.repetition_penalty)) {
    return "repetition_penalty must be > 0";
  }
  if (params.num_logprobs < 0) return "logprobs must be >= 0";
  if (params.prompt_logprobs && *params.prompt_logprobs < 0) return "prompt_logprobs must be >= 0";
  if (params.logit_bias.size() > static_cast<std::size_t>(kMaxLogitBiasEntries)) {
    return "logit_bias may hold at most " + std::to_string(kMaxLogitBiasEntries) + " entries";
  }
  for (std::size_t i = 0; i < params.logit_bias.size(); ++i) {
    const LogitBias& entry = params.logit_bias[i];
    if (entry.token < 0) return "logit_bias token ids must be >= 0";
    if (i > 0 && entry.token <= params.logit_bias[i - 1].token)
      return "logit_bias ids must be ascending and unique";
    if (!(std::fabs(entry.bias) <= kMaxLogitBias)) return "logit_bias values must be in [-100, 100]";
  }
  return {};
}

Sampler::Sampler(const SamplingParams& params) : params_(params), rng_(initial_seed(params)) {
  assert(validation_error(params).empty());
}

double Sampler::uniform() { return static_cast<double>(rng_() >> 11) * 0x1.0p-53; }

void Sampler::apply_penalties(std::span<const std::int32_t> prompt_ids,
                              std::span<const std::int32_t> output_ids) {
  const bool repetition = params_.repetition_penalty != 1.0f;
  const bool additive = params_.frequency_penalty != 0.0f || params_.presence_penalty != 0.0f;
  if (!repetition && !additive) return;
  const auto vocab = static_cast<std::int32_t>(processed_.size());
  counts_.resize(processed_.size(), 0);
  touched_.clear();
  // counts_[id] > 0: times id appears in the output; -1: only in the prompt.
  for (const std::int32_t id : output_ids) {
    if (id < 0 || id >= vocab) continue;
    if (counts_[id] == 0) touched_.push_back(id);
    ++counts_[id];
  }
  if (repetition) {
    for (const std::int32_t id : prompt_ids) {
      if (id < 0 || id >= vocab || counts_[id] != 0) continue;
      counts_[id] = -1;
      touched_.push_back(id);
    }
  }
  for (const std::int32_t id : touched_) {
    float& logit = processed_[id];
    if (repetition)
      logit = logit > 0.0f ? logit / params_.repetition_penalty : logit * params_.repetition_penalty;
    const std::int32_t count = counts_[id];
    if (count > 0) logit -= params_.frequency_penalty * static_cast<float>(count) + params_.presence_penalty;
    counts_[id] = 0;
  }
}

std::int32_t Sampler::sample_random() {
  const float inverse_temperature = 1.0f / params_.temperature;
  for (float& logit : processed_) logit *= inverse_temperature;
  const float max_logit = max_value(processed_);
  // Nothing finite, or an infinite logit: no proper distribution, take the argmax.
  if (std::isinf(max_logit)) return argmax(processed_);

  relative_weights(processed_, max_logit, weights_);
  const bool top_k_active = params_.top_k > 0 && static_cast<std::size_t>(params_.top_k) < weights_.size();
  if (params_.min_p <= 0.0f && !top_k_active && params_.top_p >= 1.0f) {
    // Nothing filtered: draw straight from the weights (zero weights can never be hit).
    const double point = uniform() * sum_weights(weights_);
    double cumulative = 0.0;
    for (std::size_t i = 0; i < weights_.size(); ++i) {
      cumulative += weights_[i];
      if (point < cumulative) return static_cast<std::int32_t>(i);
    }
    return argmax(processed_);  // rounding left `point` just past the end
  }
  // min_p: p / p_max = weight >= min_p. Weight-0 tokens (-inf, NaN, far below) never qualify.
  candidates_.clear();
  for (std::size_t i = 0; i < weights_.size(); ++i) {
    const float weight = weights_[i];
    if (weight > 0.0f && weight >= params_.min_p)
      candidates_.emplace_back(weight, static_cast<std::int32_t>(i));
  }

  if (top_k_active && static_cast<std::size_t>(params_.top_k) < candidates_.size()) {
    keep_most_likely(max_logit, KeepBy::count, static_cast<double>(params_.top_k));
  }
  if (params_.top_p < 1.0f) keep_most_likely(max_logit, KeepBy::mass, params_.top_p);

  double total = 0.0;
  for (const auto& candidate : candidates_) total += candidate.first;
  const double point = uniform() * total;
  double cumulative = 0.0;
  for (const auto& candidate : candidates_) {
    cumulative += candidate.first;
    if (point < cumulative) return candidate.second;
  }
  return candidates_.back().second;  // rounding left `point` just past the end
}

// Keeps the most likely candidates: the first `amount` of them (count), or the fewest whose mass
// reaches `amount` of the total (mass: a token stays when the mass more likely than it is below
// top_p). Instead of sorting the vocabulary, candidates are binned by logit; bins are ordered, so
// whole bins before the boundary bin are kept as they are and only the boundary bin is sorted:
// O(vocab) plus a small sort, the same set a full sort would give.
void Sampler::keep_most_likely(float max_logit, KeepBy by, double amount) {
  constexpr int kBins = 2048;
  float min_logit = max_logit;
  for (const auto& candidate : candidates_) min_logit = std::min(min_logit, processed_[candidate.second]);
  const float range = max_logit - min_logit;
  const float scale = range > 0.0f ? static_cast<float>(kBins) / range : 0.0f;
  const auto bin_of = [&](std::int32_t token) {
    return std::min(kBins - 1, static_cast<int>((max_logit - processed_[token]) * scale));
  };
  const auto measure = [by](const std::pair<float, std::int32_t>& candidate) {
    return by == KeepBy::count ? 1.0 : static_cast<double>(candidate.first);
  };

  bin_measure_.assign(kBins, 0.0);
  double total = 0.0;
  for (const auto& candidate : candidates_) {
    bin_measure_[static_cast<std::size_t>(bin_of(candidate.second))] += measure(candidate);
    total += measure(candidate);
  }
  const double target = by == KeepBy::count ? amount : amount * total;
  int boundary = kBins - 1;
  double kept_measure = 0.0;  // of the bins before `boundary`
  for (int bin = 0; bin < kBins; ++bin) {
    if (kept_measure + bin_measure_[static_cast<std::size_t>(bin)] >= target) {
      boundary = bin;
      break;
    }
    kept_measure += bin_measure_[static_cast<std::size_t>(bin)];
  }

  boundary_.clear();
  std::size_t kept = 0;
  for (const auto& candidate : candidates_) {
    const int bin = bin_of(candidate.second);
    if (bin < boundary) {
      candidates_[kept++] = candidate;
    } else if (bin == boundary) {
      boundary_.push_back(candidate);
    }
  }
  std::sort(boundary_.begin(), boundary_.end(), more_likely);
  for (const auto& candidate : boundary_) {
    candidates_[kept++] = candidate;
    kept_measure += measure(candidate);
    if (kept_measure >= target) break;
  }
  candidates_.resize(kept);
}

SampledToken Sampler::sample(std::span<const float> logits, std::span<const std::int32_t> prompt_ids,
                             std::span<const std::int32_t> output_ids) {
  if (logits.empty()) throw std::invalid_argument("Sampler::sample: empty logits");
  processed_.assign(logits.begin(), logits.end());
  for (const LogitBias& entry : params_.logit_bias) {
    if (static_cast<std::size_t>(entry.token) < processed_.size())
      processed_[static_cast<std::size_t>(entry.token)] += entry.bias;
  }
  apply_penalties(prompt_ids, output_ids);

  SampledToken result;
  result.token = params_.temperature < kGreedyTemperature ? argmax(processed_) : sample_random();
  const double lse = log_sum_exp(logits, weights_);
  result.logprob = static_cast<float>(logits[static_cast<std::size_t>(result.token)] - lse);
  if (params_.num_logprobs > 0) result.top_logprobs = top_logprobs(logits, params_.num_logprobs, lse);
  return result;
}

ScoredToken score_token(std::span<const float> logits, std::int32_t token, int num_logprobs) {
  if (token < 0 || static_cast<std::size_t>(token) >= logits.size())
    throw std::invalid_argument("score_token: token outside the logits");
  std::vector<float> weights;
  const double lse = log_sum_exp(logits, weights);
  const float logit = logits[static_cast<std::size_t>(token)];
  ScoredToken result;
  result.token = token;
  result.logprob = static_cast<float>(logit - lse);
  result.rank = static_cast<std::int32_t>(
      std::count_if(logits.begin(), logits.end(), [logit](float other) { return other >= logit; }));
  if (num_logprobs > 0) result.top_logprobs = top_logprobs(logits, num_logprobs, lse);
  return result;
}

}  // namespace pagedserve
