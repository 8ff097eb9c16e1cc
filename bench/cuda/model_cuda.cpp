// The CUDA backend end to end at a real model's shape with dummy weights: decode steps at batch
// 1/16/64 and prefill of 64 x 512 through CudaModelRunner::execute (kernels, the metadata copy,
// sampling and the step's one synchronisation: what the engine waits for), each against its floor
// measured in the same run: decode = (weights read per step + live K/V bytes) / read bandwidth,
// prefill = projection and attention FLOPs / the bf16 GEMM rate.
//   model_cuda [--model configs/models/llama-3.1-8b] [--batches 1,16,64] [--context 600]
//              [--steps 32] [--prefill 64x512] [--chunk 8192] [--repeats 3] [--enforce-eager true]
//              [--gemm-table false]   (--help lists them)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <exception>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench/bench_sequences.h"
#include "bench/cuda/device_limits.h"
#include "kernels/cuda/skinny_gemm_cuda.h"
#include "model/cuda/cuda_model_runner.h"
#include "model/cuda/device_weights.h"
#include "model/model_config.h"

using namespace pagedserve;

namespace {

std::vector<int> int_list(const std::string& text) {
  std::vector<int> values;
  std::stringstream list(text);
  for (std::string item; std::getline(list, item, ',');) values.push_back(std::stoi(item));
  return values;
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

// Greedy rows for every sampled token of `batch`.
std::vector<SampledToken> run_step(ModelRunner& runner, const ForwardBatch& batch,
                                   const SamplingParams& greedy, std::vector<std::int32_t>& no_ids) {
  std::vector<SampleRow> rows;
  for (std::size_t i = 0; i < batch.sample_token_indices.size(); ++i) {
    rows.push_back({i, &greedy, no_ids, no_ids});
  }
  return runner.execute(batch, rows);
}

constexpr const char* kUsage =
    "model_cuda: the CUDA backend at a model's shape with dummy bf16 weights; decode and prefill\n"
    "against floors measured in the same run (read bandwidth, bf16 GEMM rate).\n"
    "  --model DIR            config.json directory (default configs/models/llama-3.1-8b)\n"
    "  --batches LIST         decode batch sizes, comma separated (default 1,16,64)\n"
    "  --context N            tokens in the KV cache of every sequence before the timed steps (600)\n"
    "  --steps N              timed decode steps per batch size and repeat (32)\n"
    "  --prefill SxL          prefill S sequences of L tokens (64x512)\n"
    "  --chunk N              prefill tokens per step (8192)\n"
    "  --repeats N            repeats of every figure; the median is printed (3)\n"
    "  --enforce-eager BOOL   launch decode steps one kernel at a time instead of graphs (false)\n"
    "  --gemm-table BOOL      also time the decode step's GEMMs alone (true)\n"
    "  --help                 this list\n"
    "PAGEDSERVE_CUDA_PDL=0|1|2 picks the programmatic dependent launch level (default 1).\n";

int run(int argc, char** argv);

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    }
  }
  try {
    return run(argc, argv);
  } catch (const std::exception& error) {
    std::fprintf(stderr, "model_cuda: %s\n", error.what());
    return 1;
  }
}

namespace {

int run(int argc, char** argv) {
  std::string model_dir = "configs/models/llama-3.1-8b";
  std::vector<int> batches = {1, 16, 64};
  int context = 600, steps = 32, repeats = 3, prefill_seqs = 64, prefill_len = 512, chunk = 8192;
  bool enforce_eager = false, gemm_table = true;
  if (argc % 2 == 0) throw std::invalid_argument(std::string("a flag without a value: ") + argv[argc - 1]);
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--model") {
      model_dir = value;
    } else if (flag == "--batches") {
      batches = int_list(value);
    } else if (flag == "--context") {
      context = std::stoi(value);
    } else if (flag == "--steps") {
      steps = std::stoi(value);
    } else if (flag == "--repeats") {
      repeats = std::stoi(value);
    } else if (flag == "--chunk") {
      chunk = std::stoi(value);
    } else if (flag == "--enforce-eager") {
      enforce_eager = value == "true";
    } else if (flag == "--gemm-table") {
      gemm_table = value == "true";
    } else if (flag == "--prefill") {
      prefill_seqs = std::stoi(value.substr(0, value.find('x')));
      prefill_len = std::stoi(value.substr(value.find('x') + 1));
    } else {
      throw std::invalid_argument("unknown flag " + flag + " (--help lists them)");
    }
  }
  const ModelConfig config = load_model_config(model_dir);
  const int max_batch = std::max(*std::max_element(batches.begin(), batches.end()), prefill_seqs);
  const int max_len = std::max(context + steps + 1, prefill_len);
  const int pages_per_seq = (max_len + kPageSize - 1) / kPageSize;

  ThreadPool pool(0);
  CudaRunnerOptions options;
  options.max_num_seqs = max_batch;
  options.max_num_batched_tokens = std::max(chunk, max_batch);
  options.max_model_len = max_len;
  options.enforce_eager = enforce_eager;
  const auto load_start = std::chrono::steady_clock::now();
  CudaModelRunner runner(config, DummyWeights{1234, DType::bf16}, options, pool);
  const double load_seconds = seconds_since(load_start);
  if (runner.kv_cache().num_pages() < max_batch * pages_per_seq) {
    std::fprintf(stderr, "KV cache too small for the bench\n");
    return 1;
  }

  const double bandwidth = measure_device_read_bandwidth();
  const double gemm_flops = measure_gemm_flops();
  const double weight_bytes = static_cast<double>(DeviceWeights::bytes_read_per_step(config, DType::bf16));
  std::printf(
      "model %s, dummy bf16 weights ready in %.1f s; read bandwidth %.0f GB/s, bf16 GEMM %.0f TFLOP/s\n",
      model_dir.c_str(), load_seconds, bandwidth / 1e9, gemm_flops / 1e12);
  std::printf("weights read per decode step %.2f GB\n", weight_bytes / 1e9);

  // The decode step's GEMMs alone (w re-read from DRAM each time): where a slow step goes.
  if (gemm_table) {
    const int h = config.hidden_size, q = config.q_size(), kv = config.kv_size(), i = config.intermediate_size;
    const struct {
      const char* name;
      int n, k;
    } shapes[] = {{"qkv", q + 2 * kv, h}, {"o_proj", h, q}, {"gate_up", 2 * i, h}, {"down", h, i},
                  {"lm_head", config.vocab_size, h}};
    for (int m : {1, 2, 4, 8, 16, 64}) {
      for (int skinny_rows : {0, kSkinnyGemmMaxRows}) {
        if (skinny_rows > 0 && m > skinny_rows) continue;
        std::printf("gemm m=%d %s:", m, skinny_rows == 0 ? "cublas" : "skinny");
        for (const auto& shape : shapes) {
          const bool f32_out = std::string(shape.name) != "gate_up";  // as the runner writes them
          const double seconds = measure_gemm_seconds(m, shape.n, shape.k, f32_out, skinny_rows);
          std::printf("  %s %.1f us (%.0f GB/s)", shape.name, seconds * 1e6,
                      2.0 * shape.n * shape.k / seconds / 1e9);
        }
        std::printf("\n");
      }
    }
  }

  SamplingParams greedy;
  greedy.temperature = 0.0f;
  std::vector<std::int32_t> no_ids;
  const double kv_bytes_per_token =
      2.0 * config.num_hidden_layers * config.num_key_value_heads * config.head_dim * 2.0;  // K and V, bf16
  for (int batch_size : batches) {
    std::vector<double> step_times, enqueue_times, idle_times;
    int graphed = 0;
    for (int r = 0; r < repeats; ++r) {
      BenchSequences seqs = make_sequences(batch_size, max_len);
      // Context first (not timed), in chunks the runner takes.
      for (int done = 0; done < context;) {
        const int tokens = std::min(context - done, std::max(1, options.max_num_batched_tokens / batch_size));
        run_step(runner, seqs.step(tokens, config.vocab_size), greedy, no_ids);
        done += tokens;
      }
      std::vector<double> times, enqueue, idle;
      for (int s = 0; s < steps; ++s) {
        const ForwardBatch batch = seqs.step(1, config.vocab_size);
        const auto start = std::chrono::steady_clock::now();
        run_step(runner, batch, greedy, no_ids);
        times.push_back(seconds_since(start));
        const CudaModelRunner::StepTiming timing = runner.last_step_timing();
        enqueue.push_back(timing.enqueue_seconds);
        idle.push_back(timing.gpu_idle_seconds);
        graphed += timing.graphed ? 1 : 0;
      }
      step_times.push_back(median(times));
      enqueue_times.push_back(median(enqueue));
      idle_times.push_back(median(idle));
    }
    const double step = median(step_times);
    const double live_tokens = static_cast<double>(batch_size) * (context + steps / 2);
    const double floor = (weight_bytes + live_tokens * kv_bytes_per_token) / bandwidth;
    std::printf(
        "decode batch %3d, context ~%d: step %.3f ms (median of %d runs x %d steps) = %.0f tok/s; floor %.3f "
        "ms "
        "(%.0f tok/s); step / floor %.2f; host enqueue %.3f ms of the step; GPU idle between steps %.3f ms; "
        "%s\n",
        batch_size, context, step * 1e3, repeats, steps, batch_size / step, floor * 1e3, batch_size / floor,
        step / floor, median(enqueue_times) * 1e3, median(idle_times) * 1e3,
        graphed == repeats * steps ? "decode graphs" : graphed == 0 ? "eager" : "some steps graphed");
  }

  // Prefill: prefill_seqs prompts of prefill_len tokens, chunk tokens per step (whole prompts).
  const int per_step = std::max(1, std::min(prefill_seqs, chunk / prefill_len));
  std::vector<double> rates;
  for (int r = 0; r < repeats; ++r) {
    const auto start = std::chrono::steady_clock::now();
    for (int first = 0; first < prefill_seqs; first += per_step) {
      const int count = std::min(per_step, prefill_seqs - first);
      BenchSequences seqs = make_sequences(count, max_len, first * pages_per_seq);
      run_step(runner, seqs.step(prefill_len, config.vocab_size), greedy, no_ids);
    }
    rates.push_back(static_cast<double>(prefill_seqs) * prefill_len / seconds_since(start));
  }
  // 2 FLOP per bf16 weight per token; lm_head runs for the sampled rows only (not counted).
  const double lm_head_bytes = 2.0 * config.vocab_size * config.hidden_size;
  const double projection_flops = 2.0 * ((weight_bytes - lm_head_bytes) / 2.0);
  // Causal attention: 4 x q heads x head_dim per visible key, prefill_len / 2 keys on average.
  const double attention_flops =
      4.0 * config.num_hidden_layers * config.num_attention_heads * config.head_dim * (prefill_len + 1) / 2.0;
  const double floor_rate = gemm_flops / (projection_flops + attention_flops);
  const double rate = median(rates);
  std::printf("prefill %d x %d (%d per step): %.0f tok/s (median of %d); GEMM floor %.0f tok/s; ratio %.2f\n",
              prefill_seqs, prefill_len, per_step, rate, repeats, floor_rate, rate / floor_rate);
  return 0;
}

}  // namespace
