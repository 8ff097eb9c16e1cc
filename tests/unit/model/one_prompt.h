// Test helpers for running one prompt through a CPU LlamaModel: an f32 KV cache of a few pages and
// the batch that prefills one prompt into page 0. Header-only; the model tests share them.
#pragma once

#include <cstdint>
#include <vector>

#include "kvcache/kv_cache.h"
#include "model/forward_batch.h"
#include "model/model_config.h"

namespace pagedserve::testing {

// An f32 CPU cache of `pages` 16-slot pages for `config`.
inline KVCache f32_cache(const ModelConfig& config, int pages) {
  KVCacheConfig kv{
      config.num_hidden_layers, config.num_key_value_heads, config.head_dim, 16, DType::f32, Device::cpu, 0};
  kv.memory_budget_bytes = KVCache::bytes_per_page(kv) * static_cast<std::size_t>(pages);
  return KVCache(kv);
}

// One prompt of at most 16 tokens prefilled at positions 0.. into slots 0.. of page 0. Samples
// nothing: callers that want logits set sample_token_indices.
inline ForwardBatch one_prompt_batch(const std::vector<std::int32_t>& prompt) {
  ForwardBatch batch;
  const int n = static_cast<int>(prompt.size());
  batch.token_ids = prompt;
  for (int i = 0; i < n; ++i) {
    batch.positions.push_back(i);
    batch.slot_mapping.push_back(i);
  }
  batch.prefill = AttentionBatch{1, 1, {0, n}, {n}, {0}};
  return batch;
}

}  // namespace pagedserve::testing
