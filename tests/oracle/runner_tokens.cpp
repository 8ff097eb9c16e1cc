// Greedy tokens and first-token top logprobs of a checkpoint on either backend, for the oracle
// comparisons (compare_backends.py): transformers vs CUDA, CPU vs CUDA, engine vs single runs.
//   runner_tokens --backend cpu|cuda --model DIR --prompts FILE --out FILE.json
//                 [--mode single|engine] [--greedy 32] [--logprobs 20]
//                 [--max-num-batched-tokens N] [--kv-pages N] [--max-num-seqs N]
//                 [--enforce-eager true|false]   (cuda: no decode graphs)
// single: each prompt alone through the ModelRunner (whole-prompt prefill, then one decode step at
// a time). engine: every prompt submitted to one Engine at once (batched; chunked prefill when
// --max-num-batched-tokens is below the prompt lengths; preemption when --kv-pages is small).
// prompts FILE: one prompt per line, token ids separated by spaces. Output:
//   {"backend": ..., "mode": ..., "prompts": [{"prompt": [...], "tokens": [...],
//    "first_top": [[id, logprob], ...]}]}
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/thread_pool.h"
#include "kvcache/kv_cache.h"
#include "model/cpu_model_runner.h"
#include "model/llama_model.h"
#include "model/model_config.h"
#include "scheduler/engine.h"
#include "tests/oracle/prompt_file.h"
#include "tokenizer/tokenizer.h"
#ifdef PAGEDSERVE_HAVE_CUDA
#include "model/cuda/cuda_model_runner.h"
#endif

using namespace pagedserve;

namespace {

struct Options {
  std::string backend = "cpu";
  std::string mode = "single";
  std::filesystem::path model_dir, prompts_path, out_path;
  int greedy = 32;
  int logprobs = 20;
  int max_num_batched_tokens = 2048;
  int kv_pages = 0;  // 0: room for every prompt at once
  int max_num_seqs = 64;
  bool enforce_eager = false;
};

constexpr int kPageSize = 16;

struct Result {
  std::vector<std::int32_t> tokens;
  std::vector<std::pair<std::int32_t, float>> first_top;
};

// The backend's runner and its cache, owned together.
struct Backend {
  std::unique_ptr<LlamaModel> model;
  std::unique_ptr<KVCache> owned_cache;
  std::unique_ptr<ModelRunner> runner;
  const KVCache* cache = nullptr;
};

Backend make_backend(const Options& o, const ModelConfig& config, ThreadPool& pool, int max_model_len,
                     int num_pages) {
  Backend b;
  if (o.backend == "cuda") {
#ifdef PAGEDSERVE_HAVE_CUDA
    CudaRunnerOptions options;
    options.page_size = kPageSize;
    options.max_num_seqs = o.max_num_seqs;
    options.max_num_batched_tokens = o.max_num_batched_tokens;
    options.max_model_len = max_model_len;
    options.enforce_eager = o.enforce_eager;
    KVCacheConfig kv{config.num_hidden_layers,
                     config.num_key_value_heads,
                     config.head_dim,
                     kPageSize,
                     DType::bf16,
                     Device::cuda,
                     0};
    options.kv_cache_memory_bytes = KVCache::bytes_per_page(kv) * static_cast<std::size_t>(num_pages);
    auto runner = std::make_unique<CudaModelRunner>(config, CheckpointWeights{o.model_dir}, options, pool);
    b.cache = &runner->kv_cache();
    b.runner = std::move(runner);
    return b;
#else
    (void)max_model_len;
    throw SetupError("--backend cuda", "built without CUDA");
#endif
  }
  b.model =
      std::make_unique<LlamaModel>(config, CheckpointWeights{o.model_dir}, pool, o.max_num_batched_tokens);
  KVCacheConfig kv{config.num_hidden_layers,
                   config.num_key_value_heads,
                   config.head_dim,
                   kPageSize,
                   DType::bf16,
                   Device::cpu,
                   0};
  kv.memory_budget_bytes = KVCache::bytes_per_page(kv) * static_cast<std::size_t>(num_pages);
  b.owned_cache = std::make_unique<KVCache>(kv);
  b.cache = b.owned_cache.get();
  b.runner = std::make_unique<CpuModelRunner>(*b.model, *b.owned_cache, o.max_num_seqs);
  return b;
}

// One prompt alone: prefill, then decode steps; pages 0, 1, 2, ... in order.
Result run_single(ModelRunner& runner, const std::vector<std::int32_t>& prompt, const Options& o,
                  int max_pages) {
  SamplingParams params;
  params.temperature = 0.0f;
  params.num_logprobs = o.logprobs;
  Result result;
  std::vector<std::int32_t> feed = prompt;
  int position = 0;
  for (int step = 0; step < o.greedy; ++step) {
    ForwardBatch batch;
    AttentionBatch& part = step == 0 ? batch.prefill : batch.decode;
    const int n = static_cast<int>(feed.size());
    for (int i = 0; i < n; ++i) {
      batch.token_ids.push_back(feed[static_cast<std::size_t>(i)]);
      batch.positions.push_back(position + i);
      batch.slot_mapping.push_back(position + i);
    }
    batch.sample_token_indices.push_back(n - 1);
    part.num_rows = 1;
    part.max_pages_per_seq = max_pages;
    part.query_start_len = {0, n};
    part.seq_lens = {position + n};
    for (int p = 0; p < max_pages; ++p) part.block_table.push_back(p);
    const SampleRow row{1, &params, prompt, result.tokens};
    const std::vector<SampledToken> sampled = runner.execute(batch, std::span<const SampleRow>(&row, 1));
    if (step == 0) result.first_top = sampled[0].top_logprobs;
    result.tokens.push_back(sampled[0].token);
    position += n;
    feed = {sampled[0].token};
  }
  runner.release(1);
  return result;
}

class CollectingSink : public RequestSink {
 public:
  void on_delta(const TokenDelta& delta) override {
    for (const SampledToken& t : delta.tokens) {
      if (result.tokens.empty()) result.first_top = t.top_logprobs;
      result.tokens.push_back(t.token);
    }
  }
  void on_finish(const FinishInfo& finish) override { error = finish.error; }
  Result result;
  std::string error;
};

std::vector<Result> run_engine(Backend& backend, const std::vector<std::vector<std::int32_t>>& prompts,
                               const Options& o, int max_model_len) {
  const Tokenizer tokenizer = Tokenizer::load(o.model_dir);
  EngineConfig engine_config;
  engine_config.scheduler.max_num_seqs = o.max_num_seqs;
  engine_config.scheduler.max_num_batched_tokens = o.max_num_batched_tokens;
  engine_config.scheduler.page_size = kPageSize;
  engine_config.scheduler.max_model_len = max_model_len;
  engine_config.scheduler.enable_prefix_caching = false;
  Engine engine(engine_config, *backend.runner, *backend.cache, tokenizer);
  std::vector<std::shared_ptr<CollectingSink>> sinks;
  for (const auto& prompt : prompts) {
    RequestSpec spec;
    spec.prompt_ids = prompt;
    spec.sampling.temperature = 0.0f;
    spec.sampling.num_logprobs = o.logprobs;
    spec.stop.max_tokens = o.greedy;
    spec.stop.ignore_eos = true;
    auto sink = std::make_shared<CollectingSink>();
    const SubmitResult submitted = engine.submit(spec, sink);
    if (!submitted.id) throw SetupError("engine", submitted.error);
    sinks.push_back(sink);
  }
  engine.run_until_idle();
  const EngineStats stats = engine.stats();
  std::fprintf(stderr, "engine: %lld steps, %lld preemptions\n", static_cast<long long>(stats.num_steps),
               static_cast<long long>(stats.num_preemptions));
  std::vector<Result> results;
  for (const auto& sink : sinks) {
    if (!sink->error.empty()) throw SetupError("engine", sink->error);
    results.push_back(sink->result);
  }
  return results;
}

int run(const Options& o) {
  const ModelConfig config = load_model_config(o.model_dir);
  ThreadPool pool(0);
  const std::vector<std::vector<std::int32_t>> prompts = read_prompt_file(o.prompts_path);
  int longest = 0;
  for (const auto& p : prompts) longest = std::max(longest, static_cast<int>(p.size()));
  const int max_model_len = longest + o.greedy;
  const int max_pages = (max_model_len + kPageSize - 1) / kPageSize;
  const int num_pages = o.kv_pages > 0 ? o.kv_pages : max_pages * static_cast<int>(prompts.size() + 1);
  Options options = o;
  if (o.mode == "single") options.max_num_batched_tokens = std::max(o.max_num_batched_tokens, longest);
  Backend backend = make_backend(options, config, pool, max_model_len, num_pages);

  std::vector<Result> results;
  if (o.mode == "engine") {
    results = run_engine(backend, prompts, options, max_model_len);
  } else {
    for (const auto& prompt : prompts)
      results.push_back(run_single(*backend.runner, prompt, options, max_pages));
  }
  nlohmann::json out = {{"backend", o.backend}, {"mode", o.mode}, {"prompts", nlohmann::json::array()}};
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    nlohmann::json top = nlohmann::json::array();
    for (const auto& [id, logprob] : results[i].first_top) top.push_back({id, logprob});
    out["prompts"].push_back({{"prompt", prompts[i]}, {"tokens", results[i].tokens}, {"first_top", top}});
  }
  std::ofstream(o.out_path) << out.dump() << "\n";
  std::fprintf(stderr, "wrote %zu prompts (%s, %s) to %s\n", prompts.size(), o.backend.c_str(),
               o.mode.c_str(), o.out_path.string().c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--backend") o.backend = value;
    if (flag == "--mode") o.mode = value;
    if (flag == "--model") o.model_dir = value;
    if (flag == "--prompts") o.prompts_path = value;
    if (flag == "--out") o.out_path = value;
    if (flag == "--greedy") o.greedy = std::stoi(value);
    if (flag == "--logprobs") o.logprobs = std::stoi(value);
    if (flag == "--max-num-batched-tokens") o.max_num_batched_tokens = std::stoi(value);
    if (flag == "--kv-pages") o.kv_pages = std::stoi(value);
    if (flag == "--max-num-seqs") o.max_num_seqs = std::stoi(value);
    if (flag == "--enforce-eager") o.enforce_eager = value == "true";
  }
  if (o.model_dir.empty() || o.prompts_path.empty() || o.out_path.empty()) {
    std::fprintf(
        stderr,
        "usage: runner_tokens --backend cpu|cuda --model DIR --prompts FILE --out FILE [--mode "
        "single|engine] [--greedy 32] [--logprobs 20] [--max-num-batched-tokens N] [--kv-pages N]\n");
    return 2;
  }
  try {
    return run(o);
  } catch (const std::exception& error) {
    std::fprintf(stderr, "runner_tokens: %s\n", error.what());
    return 1;
  }
}
