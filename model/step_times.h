// Wall time per step of run_llama_layers (model/llama_layers.h), summed over forwards: a profile
// of the CPU forward for hosts without perf (bench/cpu/model_cpu --step-times). TimedSteps wraps
// a backend's Step and reads the clock around each call; the steps themselves are unchanged.
// Only meaningful where a step has finished when its call returns (the CPU backend; the CUDA
// backend's calls only enqueue). Single-threaded: the forward's calling thread.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>

namespace pagedserve {

enum class LayerStep {
  embed,
  attention_norm,
  qkv_projection,
  position_and_cache,
  attention,
  output_projection,
  mlp_norm,
  gate_up_projection,
  activation,
  down_projection,
  final_norm_and_logits,
};
inline constexpr int kNumLayerSteps = static_cast<int>(LayerStep::final_norm_and_logits) + 1;

constexpr const char* layer_step_name(LayerStep step) {
  constexpr const char* kNames[kNumLayerSteps] = {
      "embed",     "attention_norm",    "qkv_projection", "position_and_cache",
      "attention", "output_projection", "mlp_norm",       "gate_up_projection",
      "activation", "down_projection",  "final_norm_and_logits"};
  return kNames[static_cast<int>(step)];
}

struct StepTimes {
  std::array<double, kNumLayerSteps> seconds{};        // summed over calls
  std::array<std::int64_t, kNumLayerSteps> calls{};

  double of(LayerStep step) const { return seconds[static_cast<std::size_t>(step)]; }
  std::int64_t calls_of(LayerStep step) const { return calls[static_cast<std::size_t>(step)]; }
  void clear() { *this = StepTimes(); }
};

template <typename Step>
class TimedSteps {
 public:
  TimedSteps(Step& step, StepTimes& times) : step_(step), times_(times) {}

  void embed() { timed(LayerStep::embed, [&] { step_.embed(); }); }
  void attention_norm(int l) { timed(LayerStep::attention_norm, [&] { step_.attention_norm(l); }); }
  void qkv_projection(int l) { timed(LayerStep::qkv_projection, [&] { step_.qkv_projection(l); }); }
  void position_and_cache(int l) { timed(LayerStep::position_and_cache, [&] { step_.position_and_cache(l); }); }
  void attention(int l) { timed(LayerStep::attention, [&] { step_.attention(l); }); }
  void output_projection(int l) { timed(LayerStep::output_projection, [&] { step_.output_projection(l); }); }
  void mlp_norm(int l) { timed(LayerStep::mlp_norm, [&] { step_.mlp_norm(l); }); }
  void gate_up_projection(int l) { timed(LayerStep::gate_up_projection, [&] { step_.gate_up_projection(l); }); }
  void activation() { timed(LayerStep::activation, [&] { step_.activation(); }); }
  void down_projection(int l) { timed(LayerStep::down_projection, [&] { step_.down_projection(l); }); }
  void final_norm_and_logits() { timed(LayerStep::final_norm_and_logits, [&] { step_.final_norm_and_logits(); }); }

 private:
  template <typename Call>
  void timed(LayerStep which, Call&& call) {
    const auto start = std::chrono::steady_clock::now();
    call();
    const auto index = static_cast<std::size_t>(which);
    times_.seconds[index] += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    ++times_.calls[index];
  }

  Step& step_;
  StepTimes& times_;
};

}  // namespace pagedserve
