// TimedSteps (model/step_times.h) forwards every step of run_llama_layers, once, in order, and
// books each call under its own step; LlamaModel::time_steps times real forwards the same way.
#include "model/step_times.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "model/llama_layers.h"
#include "model/llama_model.h"

namespace pagedserve {
namespace {

struct RecordingStep {
  std::vector<std::string> calls;
  void embed() { calls.push_back("embed"); }
  void attention_norm(int l) { calls.push_back("attention_norm " + std::to_string(l)); }
  void qkv_projection(int l) { calls.push_back("qkv_projection " + std::to_string(l)); }
  void position_and_cache(int l) { calls.push_back("position_and_cache " + std::to_string(l)); }
  void attention(int l) { calls.push_back("attention " + std::to_string(l)); }
  void output_projection(int l) { calls.push_back("output_projection " + std::to_string(l)); }
  void mlp_norm(int l) { calls.push_back("mlp_norm " + std::to_string(l)); }
  void gate_up_projection(int l) { calls.push_back("gate_up_projection " + std::to_string(l)); }
  void activation() { calls.push_back("activation"); }
  void down_projection(int l) { calls.push_back("down_projection " + std::to_string(l)); }
  void final_norm_and_logits() { calls.push_back("final_norm_and_logits"); }
};

TEST(StepTimes, TimedStepsForwardEveryCallInOrderAndCountIt) {
  RecordingStep plain;
  run_llama_layers(plain, 3);
  RecordingStep wrapped;
  StepTimes times;
  TimedSteps<RecordingStep> timed(wrapped, times);
  run_llama_layers(timed, 3);
  EXPECT_EQ(wrapped.calls, plain.calls);
  for (int i = 0; i < kNumLayerSteps; ++i) {
    const auto step = static_cast<LayerStep>(i);
    const bool once = step == LayerStep::embed || step == LayerStep::final_norm_and_logits;
    EXPECT_EQ(times.calls_of(step), once ? 1 : 3) << layer_step_name(step);
    EXPECT_GE(times.of(step), 0.0) << layer_step_name(step);
  }
  times.clear();
  EXPECT_EQ(times.calls_of(LayerStep::attention), 0);
  EXPECT_EQ(times.of(LayerStep::attention), 0.0);
}

TEST(StepTimes, LlamaModelTimesItsForwardsOnlyWhileAsked) {
  ThreadPool pool(2);
  ModelConfig config;
  config.architecture = ModelArchitecture::qwen3;
  config.hidden_size = 32;
  config.num_hidden_layers = 2;
  config.num_attention_heads = 2;
  config.num_key_value_heads = 1;
  config.head_dim = 16;
  config.intermediate_size = 48;
  config.vocab_size = 50;
  config.rope_theta = 10000.0;
  config.rms_norm_eps = 1e-6;
  config.max_position_embeddings = 64;
  config.has_qk_norm = true;
  LlamaModel model(config, DummyWeights{7, DType::f32}, pool, /*max_num_batched_tokens=*/8);
  KVCacheConfig kv{config.num_hidden_layers, config.num_key_value_heads, config.head_dim, 16, DType::f32,
                   Device::cpu, 0};
  kv.memory_budget_bytes = KVCache::bytes_per_page(kv) * 2;
  KVCache cache(kv);
  ForwardBatch batch;
  batch.token_ids = {1, 2, 3};
  batch.positions = {0, 1, 2};
  batch.slot_mapping = {0, 1, 2};
  batch.prefill = AttentionBatch{1, 1, {0, 3}, {3}, {0}};
  batch.sample_token_indices = {2};
  std::vector<float> logits(static_cast<std::size_t>(config.vocab_size));
  const TensorView logits_view(logits.data(), DType::f32, {1, config.vocab_size});

  StepTimes times;
  model.time_steps(&times);
  model.forward(batch, cache, logits_view);
  EXPECT_EQ(times.calls_of(LayerStep::embed), 1);
  EXPECT_EQ(times.calls_of(LayerStep::qkv_projection), config.num_hidden_layers);
  EXPECT_EQ(times.calls_of(LayerStep::final_norm_and_logits), 1);
  model.time_steps(nullptr);
  model.forward(batch, cache, logits_view);
  EXPECT_EQ(times.calls_of(LayerStep::embed), 1);  // not timed any more
}

}  // namespace
}  // namespace pagedserve
