// TimedSteps (model/step_times.h) forwards every step of run_llama_layers, once, in order, and
// books each call under its own step (LlamaModel::time_steps: llama_model_test.cpp).
#include "model/step_times.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "model/llama_layers.h"

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

}  // namespace
}  // namespace pagedserve
