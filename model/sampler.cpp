#include "model/sampler.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <limits>
#include <stdexcept>

namespace pagedserve {
namespace {

constexpr float kNegativeInfinity = -std::numeric_limits<float>::infinity();

// Most likely first; equal logits by lower id, so every order is total and reproducible.
bool more_likely(const std::pair<float, std::int32_t>& a, const std::pair<float, std::int32_t>& b) {
  return a.first > b.first || (a.first == b.first && a.second < b.second);
}

std::int32_t argmax(std::span<const float> values) {
  std::int32_t best = 0;
  float best_value = kNegativeInfinity;
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (values[i] > best_value) {  // NaN never wins
      best_value = values[i];
      best = static_cast<std::int32_t>(i);
    }
  }
  return best;
}

// log(sum(exp(values))), skipping NaN; -inf when nothing is finite.
double log_sum_exp(std::span<const float> values) {
  float max_value = kNegativeInfinity;
  for (const float v : values) max_value = std::max(max_value, v);  // NaN-safe: max(x, NaN) = x
  if (max_value == kNegativeInfinity) return -std::numeric_limits<double>::infinity();
  double sum = 0.0;
  for (const float v : values) {
    if (v == v) sum += std::exp(static_cast<double>(v) - max_value);
  }
  return max_value + std::log(sum);
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
  return {};
}

Sampler::Sampler(const SamplingParams& params) : params_(params), rng_(initial_seed(params)) {
  assert(validation_error(params).empty());
}

double Sampler::uniform() { return static_cast<double>(rng_() >> 11) * 0x1.0p-53; }

void Sampler::apply_penalties(std::span<const std::int32_t> prompt_ids, std::span<const std::int32_t> output_ids) {
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
    if (repetition) logit = logit > 0.0f ? logit / params_.repetition_penalty : logit * params_.repetition_penalty;
    const std::int32_t count = counts_[id];
    if (count > 0) logit -= params_.frequency_penalty * static_cast<float>(count) + params_.presence_penalty;
    counts_[id] = 0;
  }
}

std::int32_t Sampler::sample_random() {
  const float inverse_temperature = 1.0f / params_.temperature;
  float max_logit = kNegativeInfinity;
  for (float& logit : processed_) {
    logit *= inverse_temperature;
    max_logit = std::max(max_logit, logit);
  }
  if (max_logit == kNegativeInfinity) return argmax(processed_);  // nothing finite: no distribution

  // min_p: p / p_max = exp(logit - max_logit) >= min_p.
  const float threshold = params_.min_p > 0.0f ? max_logit + std::log(params_.min_p) : kNegativeInfinity;
  candidates_.clear();
  for (std::size_t i = 0; i < processed_.size(); ++i) {
    const float logit = processed_[i];
    if (logit > kNegativeInfinity && logit >= threshold) candidates_.emplace_back(logit, static_cast<std::int32_t>(i));
  }

  if (params_.top_k > 0 && static_cast<std::size_t>(params_.top_k) < candidates_.size()) {
    std::nth_element(candidates_.begin(), candidates_.begin() + params_.top_k - 1, candidates_.end(), more_likely);
    candidates_.resize(static_cast<std::size_t>(params_.top_k));
  }

  if (params_.top_p < 1.0f) {
    double total = 0.0;
    for (const auto& candidate : candidates_) total += std::exp(static_cast<double>(candidate.first) - max_logit);
    const double target = static_cast<double>(params_.top_p) * total;
    // Sort only as far as needed: the most likely few first, widening while the mass is short.
    double cumulative = 0.0;
    std::size_t keep = candidates_.size();
    std::size_t sorted = 0;
    std::size_t chunk = 64;
    while (sorted < candidates_.size()) {
      const std::size_t end = std::min(candidates_.size(), sorted + chunk);
      const auto first = candidates_.begin() + static_cast<std::ptrdiff_t>(sorted);
      const auto last = candidates_.begin() + static_cast<std::ptrdiff_t>(end);
      if (end < candidates_.size()) std::nth_element(first, last, candidates_.end(), more_likely);
      std::sort(first, last, more_likely);
      for (std::size_t i = sorted; i < end; ++i) {
        cumulative += std::exp(static_cast<double>(candidates_[i].first) - max_logit);
        if (cumulative >= target) {
          keep = i + 1;
          break;
        }
      }
      if (keep != candidates_.size() || cumulative >= target) break;
      sorted = end;
      chunk *= 4;
    }
    candidates_.resize(keep);
  }

  double total = 0.0;
  for (const auto& candidate : candidates_) total += std::exp(static_cast<double>(candidate.first) - max_logit);
  const double point = uniform() * total;
  double cumulative = 0.0;
  for (const auto& candidate : candidates_) {
    cumulative += std::exp(static_cast<double>(candidate.first) - max_logit);
    if (point < cumulative) return candidate.second;
  }
  return candidates_.back().second;  // rounding left `point` just past the end
}

SampledToken Sampler::sample(std::span<const float> logits, std::span<const std::int32_t> prompt_ids,
                             std::span<const std::int32_t> output_ids) {
  if (logits.empty()) throw std::invalid_argument("Sampler::sample: empty logits");
  processed_.assign(logits.begin(), logits.end());
  apply_penalties(prompt_ids, output_ids);

  SampledToken result;
  result.token = params_.temperature < kGreedyTemperature ? argmax(processed_) : sample_random();
  const double lse = log_sum_exp(logits);
  result.logprob = static_cast<float>(logits[static_cast<std::size_t>(result.token)] - lse);
  if (params_.num_logprobs > 0) result.top_logprobs = top_logprobs(logits, params_.num_logprobs, lse);
  return result;
}

}  // namespace pagedserve
