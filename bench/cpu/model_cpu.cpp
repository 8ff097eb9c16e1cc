// The CPU forward at a real model's shape with --load-format dummy weights: batch-1/4/16 decode
// tok/s, prefill tok/s, and each against the memory floor (bytes of weights one step streams /
// read bandwidth measured in the same run). `model_cpu --help` lists the flags and their defaults:
//   model_cpu [--model configs/models/qwen2.5-0.5b] [--dtype bf16|f16] [--threads 2]
//             [--batches 1,4,16] [--context 16] [--steps 32] [--prompt 512] [--repeats 3]
//             [--bandwidth-only] [--step-times]
//
// Decode runs at a given context (--context; 512 matches llama-batched-bench -npp 512 -pps): before
// the timed steps, untimed, every sequence gets that many tokens in the KV cache. The context's
// whole pages are prefilled once and shared by all the sequences through their block tables, as
// prefix caching shares them (llama-batched-bench -pps likewise processes the prompt once and
// copies it); the rest of it (context % page size tokens) is prefilled per sequence. Prefill is
// --prompt tokens of one sequence from an empty cache. bench/cpu/side_by_side.sh parses the "read
// bandwidth", "weights read per decode step", "decode batch" and "prefill" lines; --bandwidth-only
// prints the read bandwidth line alone (side_by_side.sh's probe between runs).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include "bench/bench_sequences.h"
#include "bench/cpu/read_bandwidth.h"
#include "model/llama_model.h"
#include "model/model_config.h"

using namespace pagedserve;

namespace {

struct Options {
  std::string model_dir = "configs/models/qwen2.5-0.5b";
  DType dtype = DType::bf16;
  int threads = 2;
  std::vector<int> batches = {1, 4, 16};
  int context = 16;
  int steps = 32;
  int prompt = 512;
  int repeats = 3;
  bool bandwidth_only = false;
  bool step_times = false;
};

void print_help() {
  const Options d;
  std::string batches;
  for (int b : d.batches) {
    if (!batches.empty()) batches += ',';
    batches += std::to_string(b);
  }
  std::printf(
      "model_cpu: the CPU forward at a model's shape with dummy weights; decode and prefill tok/s\n"
      "against the memory floor (weights read per step / read bandwidth probed in the same run).\n"
      "  --model DIR         model directory with config.json (default %s)\n"
      "  --dtype bf16|f16    weight dtype (default %s)\n"
      "  --threads N         threads (default %d)\n"
      "  --batches LIST      decode batch sizes, comma separated (default %s)\n"
      "  --context N         tokens of every sequence in the KV cache before the timed decode steps;\n"
      "                      its whole pages are prefilled once and shared (default %d)\n"
      "  --steps N           timed decode steps per batch size and repeat (default %d)\n"
      "  --prompt N          prefill tokens: one sequence, empty cache, one step (default %d)\n"
      "  --repeats N         repeats of every figure; the median is printed (default %d)\n"
      "  --bandwidth-only    print the read bandwidth probe alone and exit (default off)\n"
      "  --step-times        after each decode batch, the wall time of each forward step per decode\n"
      "                      step, and the projections' weights read per second (default off)\n"
      "  --help              this list\n",
      d.model_dir.c_str(), std::string(dtype_name(d.dtype)).c_str(), d.threads, batches.c_str(), d.context,
      d.steps, d.prompt, d.repeats);
}

// Fills `o` from argv; false (having said why) on an unknown flag, a missing or bad value.
bool parse_args(int argc, char** argv, Options& o) {
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--help" || flag == "-h") {
      print_help();
      std::exit(0);
    }
    if (flag == "--bandwidth-only") {
      o.bandwidth_only = true;
      continue;
    }
    if (flag == "--step-times") {
      o.step_times = true;
      continue;
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "model_cpu: %s needs a value (--help lists the flags)\n", flag.c_str());
      return false;
    }
    const std::string value = argv[++i];
    if (flag == "--model") {
      o.model_dir = value;
    } else if (flag == "--dtype" && (value == "bf16" || value == "f16")) {
      o.dtype = value == "f16" ? DType::f16 : DType::bf16;
    } else if (flag == "--threads") {
      o.threads = std::atoi(value.c_str());
    } else if (flag == "--batches") {
      o.batches.clear();
      std::stringstream list(value);
      for (std::string item; std::getline(list, item, ',');) o.batches.push_back(std::atoi(item.c_str()));
    } else if (flag == "--context") {
      o.context = std::atoi(value.c_str());
    } else if (flag == "--steps") {
      o.steps = std::atoi(value.c_str());
    } else if (flag == "--prompt") {
      o.prompt = std::atoi(value.c_str());
    } else if (flag == "--repeats") {
      o.repeats = std::atoi(value.c_str());
    } else {
      std::fprintf(stderr, "model_cpu: bad flag or value: %s %s (--help lists them)\n", flag.c_str(),
                   value.c_str());
      return false;
    }
  }
  const bool batches_ok =
      !o.batches.empty() && std::all_of(o.batches.begin(), o.batches.end(), [](int b) { return b >= 1; });
  if (!batches_ok || o.threads < 1 || o.context < 0 || o.steps < 1 || o.prompt < 1 || o.repeats < 1) {
    std::fprintf(stderr, "model_cpu: --batches, --threads, --steps, --prompt, --repeats >= 1; --context >= 0\n");
    return false;
  }
  return true;
}

// Points the first `shared_pages` block-table entries of every row of `part` at the pages of the
// sequence whose first page is `first_page` (the shared context).
void share_context_pages(AttentionBatch& part, int first_page, int shared_pages) {
  for (int row = 0; row < part.num_rows; ++row) {
    for (int p = 0; p < shared_pages; ++p) {
      part.block_table[static_cast<std::size_t>(row) * static_cast<std::size_t>(part.max_pages_per_seq) +
                       static_cast<std::size_t>(p)] = first_page + p;
    }
  }
}

// Per decode step: each forward step's wall time and share; for the projections also the weights
// they read per second, against the probe (lm_head is in final_norm_and_logits).
void print_step_times(const StepTimes& times, int decode_steps, const ModelWeights& weights, double bandwidth) {
  double layer_bytes[kNumLayerSteps] = {};
  for (const LayerWeights& layer : weights.layers) {
    layer_bytes[static_cast<int>(LayerStep::qkv_projection)] +=
        static_cast<double>(layer.q_proj.nbytes() + layer.k_proj.nbytes() + layer.v_proj.nbytes());
    layer_bytes[static_cast<int>(LayerStep::output_projection)] += static_cast<double>(layer.o_proj.nbytes());
    layer_bytes[static_cast<int>(LayerStep::gate_up_projection)] +=
        static_cast<double>(layer.gate_proj.nbytes() + layer.up_proj.nbytes());
    layer_bytes[static_cast<int>(LayerStep::down_projection)] += static_cast<double>(layer.down_proj.nbytes());
  }
  layer_bytes[static_cast<int>(LayerStep::final_norm_and_logits)] = static_cast<double>(weights.lm_head.nbytes());
  double total = 0;
  for (double seconds : times.seconds) total += seconds;
  std::printf("  forward steps, per decode step (sum %.3f ms):\n", total * 1e3 / decode_steps);
  for (int i = 0; i < kNumLayerSteps; ++i) {
    const auto step = static_cast<LayerStep>(i);
    const double seconds = times.of(step) / decode_steps;
    std::printf("    %-22s %8.3f ms %5.1f%%", layer_step_name(step), seconds * 1e3, 100.0 * times.of(step) / total);
    if (layer_bytes[i] > 0 && seconds > 0) {
      std::printf("  %6.1f GB/s of weights (%.2f of the probe)", layer_bytes[i] / seconds / 1e9,
                  layer_bytes[i] / seconds / bandwidth);
    }
    std::printf("\n");
  }
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  if (!parse_args(argc, argv, options)) return 2;
  const std::string& model_dir = options.model_dir;
  const DType dtype = options.dtype;
  const int threads = options.threads, context = options.context, steps = options.steps;
  const int prompt = options.prompt, repeats = options.repeats;
  const std::vector<int>& batches = options.batches;
  ThreadPool pool(threads);
  if (options.bandwidth_only) {
    std::printf("read bandwidth %.1f GB/s (%d threads)\n", measure_read_bandwidth(pool) / 1e9, threads);
    return 0;
  }

  const ModelConfig config = load_model_config(model_dir);
  const int max_batch = *std::max_element(batches.begin(), batches.end());
  // The context's whole pages go in one step of one sequence, the rest in one step of them all.
  const int shared_context = context / kPageSize * kPageSize;
  const int shared_pages = shared_context / kPageSize;
  const int max_tokens = std::max({prompt, shared_context, (context - shared_context) * max_batch, max_batch});
  const auto load_start = std::chrono::steady_clock::now();
  LlamaModel model(config, DummyWeights{1234, dtype}, pool, max_tokens);
  const double load_seconds = seconds_since(load_start);

  const int max_len = std::max(prompt, context + steps + 1);
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
  std::printf("decode at context %d: every sequence has %d tokens in the KV cache first (%d of them in pages "
              "shared by the sequences)\n",
              context, context, shared_context);

  std::vector<float> logits(static_cast<std::size_t>(max_tokens) *
                            static_cast<std::size_t>(config.vocab_size));
  // One forward of `batch` over `seqs`, whose rows read the shared context from seqs.first_page[0].
  const auto forward = [&](ForwardBatch& batch, const BenchSequences& seqs) {
    share_context_pages(batch.decode, seqs.first_page[0], shared_pages);
    share_context_pages(batch.prefill, seqs.first_page[0], shared_pages);
    model.forward(batch, cache,
                  TensorView(logits.data(), DType::f32, {static_cast<int>(seqs.length.size()), config.vocab_size}));
  };
  for (int batch_size : batches) {
    std::vector<double> rates;
    StepTimes step_times;  // over every timed decode step of every repeat
    for (int r = 0; r < repeats; ++r) {
      BenchSequences seqs = make_sequences(batch_size, max_len);
      // The context first (not timed): its whole pages once as sequence 0's, then the rest per sequence.
      if (shared_context > 0) {
        BenchSequences first = make_sequences(1, max_len, seqs.first_page[0]);
        ForwardBatch batch = first.step(shared_context, config.vocab_size);
        forward(batch, first);
        for (int& length : seqs.length) length = shared_context;
      }
      if (context > shared_context) {
        ForwardBatch batch = seqs.step(context - shared_context, config.vocab_size);
        forward(batch, seqs);
      }
      if (options.step_times) model.time_steps(&step_times);
      const auto start = std::chrono::steady_clock::now();
      for (int s = 0; s < steps; ++s) {
        ForwardBatch batch = seqs.step(1, config.vocab_size);
        forward(batch, seqs);
      }
      rates.push_back(static_cast<double>(steps) * batch_size / seconds_since(start));
      model.time_steps(nullptr);
    }
    std::sort(rates.begin(), rates.end());
    const double floor_rate = floor_steps_per_second * batch_size;
    std::printf(
        "decode batch %2d: %7.1f tok/s (median of %d; min %.1f, max %.1f)  memory floor %.1f tok/s, "
        "ratio %.2f\n",
        batch_size, rates[rates.size() / 2], repeats, rates.front(), rates.back(), floor_rate,
        rates[rates.size() / 2] / floor_rate);
    if (options.step_times) print_step_times(step_times, steps * repeats, model.weights(), bandwidth);
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
