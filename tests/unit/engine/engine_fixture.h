// A small Qwen3-architecture model with dummy (seeded) weights, the real Qwen3 tokenizer from
// third_party/npm (fetched by tools/fetch-tokenizers.sh), and helpers to run requests through an
// Engine to completion on the test's thread.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "kvcache/kv_cache.h"
#include "model/cpu_model_runner.h"
#include "model/llama_model.h"
#include "model/model_config.h"
#include "tokenizer/tokenizer.h"
#include "scheduler/engine.h"

namespace pagedserve::testing {

// Collects everything one request emits.
class CollectingSink : public RequestSink {
 public:
  void on_delta(const TokenDelta& delta) override {
    text += delta.text;
    for (const SampledToken& token : delta.tokens) tokens.push_back(token.token);
    sampled.insert(sampled.end(), delta.tokens.begin(), delta.tokens.end());
    if (!delta.prompt_logprobs.empty()) prompt_logprobs = delta.prompt_logprobs;
    ++num_deltas;
  }
  void on_finish(const FinishInfo& info) override {
    finish = info;
    ++num_finishes;
  }

  std::string text;
  std::vector<std::int32_t> tokens;
  std::vector<SampledToken> sampled;         // with their logprobs
  std::vector<ScoredToken> prompt_logprobs;  // from the first delta
  std::optional<FinishInfo> finish;
  int num_deltas = 0;
  int num_finishes = 0;
};

struct EngineSetup {
  int page_size = 16;
  int num_pages = 256;
  int max_num_seqs = 32;
  int max_num_batched_tokens = 256;
  int max_model_len = 1024;
  bool enable_prefix_caching = true;
  DType cache_dtype = DType::f32;
  // f32: the CPU matmul then runs one kernel at every batch shape (kernels/cpu/matmul.h), so the
  // tests that compare outputs across batch shapes, chunkings and preemptions compare equal sums.
  // With bf16 weights x is rounded to bf16 and kernels differ by M: last-bit differences between
  // shapes become bf16-ulp differences now and then, enough to flip a near-tie token of this
  // random model (as in any bf16 server).
  DType weights_dtype = DType::f32;
};

// Owns everything an Engine needs; model weights are made once per process.
class EngineHarness {
 public:
  explicit EngineHarness(const EngineSetup& setup);

  Engine& engine() { return *engine_; }
  const Tokenizer& tokenizer() const { return *tokenizer_; }
  const ModelConfig& model_config() const { return model_config_; }

  // Submits every spec, runs the engine until idle and returns one sink per spec.
  std::vector<std::shared_ptr<CollectingSink>> run(const std::vector<RequestSpec>& specs);

 private:
  ModelConfig model_config_;
  std::shared_ptr<const Tokenizer> tokenizer_;
  ThreadPool pool_{2};
  std::unique_ptr<LlamaModel> model_;
  std::unique_ptr<KVCache> cache_;
  std::unique_ptr<CpuModelRunner> runner_;
  std::unique_ptr<Engine> engine_;
};

// Where the Qwen3 tokenizer lives once fetched; nullopt when it is missing.
std::optional<std::filesystem::path> qwen3_tokenizer_dir();

// `count` deterministic pseudo-random prompt ids in [1000, 20000).
std::vector<std::int32_t> make_prompt(int count, int salt);

// Greedy, exactly max_tokens tokens (EOS ignored).
RequestSpec greedy_spec(std::vector<std::int32_t> prompt, int max_tokens);

}  // namespace pagedserve::testing
