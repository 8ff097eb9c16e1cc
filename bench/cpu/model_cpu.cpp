// The CPU forward at a real model's shape with --load-format dummy weights: batch-1/4/16 decode
// tok/s, prefill tok/s, and each against the memory floor (bytes of weights one step streams /
// read bandwidth measured in the same run).
//   model_cpu [--model configs/models/qwen2.5-0.5b] [--threads 2] [--prompt 512] [--steps 32]
//             [--batches 1,4,16] [--dtype bf16|f16] [--repeats 3]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include "bench/bench_sequences.h"
#include "bench/cpu/read_bandwidth.h"
#include "model/llama_model.h"
#include "model/model_config.h"

using namespace pagedserve;

int main(int argc, char** argv) {
  std::string model_dir = "configs/models/qwen2.5-0.5b";
  int threads = 2, prompt = 512, steps = 32, repeats = 3;
  std::vector<int> batches = {1, 4, 16};
  DType dtype = DType::bf16;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--model") model_dir = value;
    if (flag == "--threads") threads = std::stoi(value);
    if (flag == "--prompt") prompt = std::stoi(value);
    if (flag == "--steps") steps = std::stoi(value);
    if (flag == "--repeats") repeats = std::stoi(value);
    if (flag == "--dtype") dtype = value == "f16" ? DType::f16 : DType::bf16;
    if (flag == "--batches") {
      batches.clear();
      std::stringstream list(value);
      for (std::string item; std::getline(list, item, ',');) batches.push_back(std::stoi(item));
    }
  }
  const ModelConfig config = load_model_config(model_dir);
  ThreadPool pool(threads);
  const int max_batch = *std::max_element(batches.begin(), batches.end());
  const int max_tokens = std::max(prompt, 16 * max_batch);  // the untimed 16-token prompts go in one step
  const auto load_start = std::chrono::steady_clock::now();
  LlamaModel model(config, DummyWeights{1234, dtype}, pool, max_tokens);
  const double load_seconds = seconds_since(load_start);

  const int max_len = std::max(prompt, 16 + steps + 1);
  KVCacheConfig kv{config.num_hidden_layers,
                   config.num_key_value_heads,
                   config.head_dim,
                   kPageSize,
                   DType::bf16,
                   Device::cpu,
                   0};
  const int pages_needed = std::max(max_batch, 1) * ((max_len + kPageSize - 1) / kPageSize);
  kv.memory_budget_bytes = KVCache::bytes_per_page(kv) * static_cast<std::size_t>(pages_needed);
  KVCache cache(kv);

  const double bandwidth = measure_read_bandwidth(pool);
  const double step_bytes = static_cast<double>(model.weights().bytes_read_per_step());
  const double floor_steps_per_second = bandwidth / step_bytes;
  std::printf("model %s (%s), dummy %s weights (made in %.1f s), %d threads\n", model_dir.c_str(),
              config.architecture_name.c_str(), std::string(dtype_name(dtype)).c_str(), load_seconds,
              threads);
  std::printf("read bandwidth %.1f GB/s; weights read per decode step %.1f MB; floor %.1f steps/s\n",
              bandwidth / 1e9, step_bytes / 1e6, floor_steps_per_second);

  std::vector<float> logits(static_cast<std::size_t>(max_tokens) *
                            static_cast<std::size_t>(config.vocab_size));
  for (int batch_size : batches) {
    std::vector<double> rates;
    for (int r = 0; r < repeats; ++r) {
      BenchSequences seqs = make_sequences(batch_size, max_len);
      // A short prompt per sequence first (not timed), so attention has some context.
      ForwardBatch prefill = seqs.step(16, config.vocab_size);
      model.forward(prefill, cache, TensorView(logits.data(), DType::f32, {batch_size, config.vocab_size}));
      const auto start = std::chrono::steady_clock::now();
      for (int s = 0; s < steps; ++s) {
        ForwardBatch batch = seqs.step(1, config.vocab_size);
        model.forward(batch, cache, TensorView(logits.data(), DType::f32, {batch_size, config.vocab_size}));
      }
      rates.push_back(static_cast<double>(steps) * batch_size / seconds_since(start));
    }
    std::sort(rates.begin(), rates.end());
    const double floor_rate = floor_steps_per_second * batch_size;
    std::printf(
        "decode batch %2d: %7.1f tok/s (median of %d; min %.1f, max %.1f)  memory floor %.1f tok/s, "
        "ratio %.2f\n",
        batch_size, rates[rates.size() / 2], repeats, rates.front(), rates.back(), floor_rate,
        rates[rates.size() / 2] / floor_rate);
  }

  std::vector<double> rates;
  for (int r = 0; r < repeats; ++r) {
    BenchSequences seqs = make_sequences(1, max_len);
    const auto start = std::chrono::steady_clock::now();
    ForwardBatch batch = seqs.step(prompt, config.vocab_size);
    model.forward(batch, cache, TensorView(logits.data(), DType::f32, {1, config.vocab_size}));
    rates.push_back(prompt / seconds_since(start));
  }
  std::sort(rates.begin(), rates.end());
  double flops_per_token = 0;
  for (const LayerWeights& layer : model.weights().layers) {
    for (const TensorView* w : {&layer.q_proj, &layer.k_proj, &layer.v_proj, &layer.o_proj, &layer.gate_proj,
                                &layer.up_proj, &layer.down_proj}) {
      flops_per_token += 2.0 * static_cast<double>(w->numel());
    }
  }
  std::printf(
      "prefill %d tokens: %7.1f tok/s (median of %d; min %.1f, max %.1f), %.1f GFLOP/s in projections; "
      "memory floor %.0f tok/s (compute-bound)\n",
      prompt, rates[rates.size() / 2], repeats, rates.front(), rates.back(),
      rates[rates.size() / 2] * flops_per_token / 1e9, floor_steps_per_second * prompt);
  return 0;
}
