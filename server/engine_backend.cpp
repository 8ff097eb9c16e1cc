#include "server/engine_backend.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <stdexcept>

#include "core/error.h"
#include "core/thread_pool.h"
#include "kernels/cpu/kernel_override.h"
#include "kvcache/kv_cache.h"
#include "model/cpu_model_runner.h"
#include "model/llama_model.h"
#include "model/model_config.h"
#include "scheduler/engine.h"
#include "server/completion_request.h"
#include "tokenizer/tokenizer.h"
#ifdef PAGEDSERVE_HAVE_CUDA
#include "model/cuda/cuda_model_runner.h"
#endif

namespace pagedserve {
namespace {

SteadyTime or_never(const std::optional<SteadyTime>& t) { return t.value_or(SteadyTime{}); }

GenerationFinishReason to_server(FinishReason reason) {
  switch (reason) {
    case FinishReason::stop:
      return GenerationFinishReason::stop;
    case FinishReason::length:
      return GenerationFinishReason::length;
    case FinishReason::abort:
      return GenerationFinishReason::abort;
  }
  return GenerationFinishReason::abort;
}

// Engine-thread callbacks, copied into the server's types.
class SinkAdapter : public RequestSink {
 public:
  explicit SinkAdapter(std::shared_ptr<GenerationSink> inner) : inner_(std::move(inner)) {}

  void on_delta(const TokenDelta& delta) override {
    GenerationDelta out;
    out.text = delta.text;
    out.tokens.reserve(delta.tokens.size());
    for (const SampledToken& t : delta.tokens) out.tokens.push_back({t.token, t.logprob, t.top_logprobs});
    out.prompt_logprobs.reserve(delta.prompt_logprobs.size());
    for (const ScoredToken& t : delta.prompt_logprobs)
      out.prompt_logprobs.push_back({t.token, t.logprob, t.rank, t.top_logprobs});
    inner_->on_delta(out);
  }

  void on_finish(const FinishInfo& finish) override {
    GenerationFinish out;
    out.reason = to_server(finish.reason);
    out.error = finish.error;
    out.prompt_tokens = finish.prompt_tokens;
    out.completion_tokens = finish.completion_tokens;
    out.cached_tokens = finish.cached_tokens;
    out.timings.arrival = finish.timings.arrival;
    out.timings.scheduled = or_never(finish.timings.first_scheduled);
    out.timings.first_token = or_never(finish.timings.first_token);
    out.timings.finish = or_never(finish.timings.finish);
    out.timings.num_preemptions = finish.timings.num_preemptions;
    inner_->on_finish(out);
  }

 private:
  std::shared_ptr<GenerationSink> inner_;
};

DType kv_dtype(const std::string& name) {
  if (name == "f32") return DType::f32;
  if (name == "f16") return DType::f16;
  return DType::bf16;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

ModelConfig load_config_logged(const EngineSettings& s) {
  if (s.backend == "cuda" && !cuda_compiled_in()) {
    throw SetupError("--backend cuda", "this build has no CUDA backend (built without nvcc)");
  }
  spdlog::info("loading model config from {}/config.json", s.model_dir);
  ModelConfig config = load_model_config(s.model_dir);
  spdlog::info(
      "model: {} | {} layers, hidden {}, {} q heads / {} kv heads x {}, intermediate {}, vocab {}, "
      "context {}, dtype {}",
      config.architecture_name, config.num_hidden_layers, config.hidden_size, config.num_attention_heads,
      config.num_key_value_heads, config.head_dim, config.intermediate_size, config.vocab_size,
      config.max_position_embeddings, dtype_name(config.torch_dtype));
  return config;
}

WeightSource weight_source(const EngineSettings& s) {
  if (s.load_format == "dummy") {
    spdlog::info("dummy weights (seed {})", s.dummy_seed);
    return DummyWeights{s.dummy_seed, DType::bf16};
  }
  spdlog::info("loading weights from {} ...", s.model_dir);
  return CheckpointWeights{s.model_dir};
}

int served_model_len(const EngineSettings& s, const ModelConfig& config) {
  int len = config.max_position_embeddings;
  if (s.max_model_len > 0) {
    if (s.max_model_len > len) {
      spdlog::warn("--max-model-len {} is beyond the model's {}; using {}", s.max_model_len, len, len);
    }
    len = std::min(len, s.max_model_len);
  }
  return len;
}

class EngineBackend final : public CompletionBackend {
 public:
  explicit EngineBackend(const EngineSettings& s)
      : pool_(s.threads), config_(load_config_logged(s)), tokenizer_(load_tokenizer(s)) {
    max_model_len_ = served_model_len(s, config_);
    if (s.backend == "cuda") {
      make_cuda_runner(s);
    } else {
      make_cpu_runner(s);
    }
    const long long capacity = (long long)cache_->num_pages() * cache_->page_size();
    if (capacity < max_model_len_) {
      spdlog::warn("the KV cache holds {} tokens, fewer than max_model_len {}: longer requests are refused",
                   capacity, max_model_len_);
    }

    EngineConfig engine_config;
    engine_config.scheduler.max_num_seqs = s.max_num_seqs;
    engine_config.scheduler.max_num_batched_tokens = s.max_num_batched_tokens;
    engine_config.scheduler.page_size = s.page_size;
    engine_config.scheduler.max_model_len = max_model_len_;
    engine_config.scheduler.enable_prefix_caching = s.enable_prefix_caching;
    engine_ = std::make_unique<Engine>(engine_config, *runner_, *cache_, tokenizer_);
    engine_->start();
    spdlog::info(
        "engine started on {}: max_num_seqs {}, max_num_batched_tokens {}, max_model_len {}, prefix caching "
        "{}",
        s.backend, s.max_num_seqs, s.max_num_batched_tokens, max_model_len_,
        s.enable_prefix_caching ? "on" : "off");
  }

  ~EngineBackend() override { engine_->stop(); }

  SubmitOutcome submit(GenerationSpec spec, std::shared_ptr<GenerationSink> sink) override {
    RequestSpec request;
    request.prompt_ids = std::move(spec.prompt_ids);
    const GenerationSampling& g = spec.sampling;
    request.sampling = {
        g.temperature,        g.top_p, g.top_k,        g.min_p, g.presence_penalty, g.frequency_penalty,
        g.repetition_penalty, g.seed,  g.num_logprobs, {},      g.prompt_logprobs};
    static_assert(kMaxLogitBiasEntries == kMaxLogitBiasEntriesPerRequest);
    for (const auto& [token, bias] : g.logit_bias) request.sampling.logit_bias.push_back({token, bias});
    static_assert(kMaxScoredLogprobs == kMaxPromptLogprobsPerRequest);
    request.skip_special_tokens = spec.skip_special_tokens;
    request.stop.max_tokens = spec.stop.max_tokens;
    request.stop.min_tokens = spec.stop.min_tokens;
    request.stop.ignore_eos = spec.stop.ignore_eos;
    request.stop.stop_token_ids = std::move(spec.stop.stop_token_ids);
    request.stop.stop_strings = std::move(spec.stop.stop);
    SubmitResult result = engine_->submit(std::move(request), std::make_shared<SinkAdapter>(std::move(sink)));
    return {result.id, result.error, 400};
  }

  void abort(BackendRequestId id) override { engine_->abort(id); }

  BackendStats stats() const override {
    EngineStats e = engine_->stats();
    BackendStats s;
    s.num_running = e.num_running;
    s.num_waiting = e.num_waiting;
    s.kv_cache_usage = e.kv_cache_usage;
    s.num_preemptions = std::uint64_t(e.num_preemptions);
    s.prompt_tokens = std::uint64_t(e.prompt_tokens);
    s.generation_tokens = std::uint64_t(e.generation_tokens);
    s.prefix_cache_queries = std::uint64_t(e.prefix_cache_queries);
    s.prefix_cache_hits = std::uint64_t(e.prefix_cache_hits);
    return s;
  }

  std::vector<std::int32_t> tokenize(std::string_view text, bool add_special_tokens) const override {
    return tokenizer_.encode(text, add_special_tokens);
  }
  std::string detokenize(std::span<const std::int32_t> ids) const override {
    return tokenizer_.decode(ids, false);
  }
  std::string token_text(std::int32_t id) const override {
    return tokenizer_.decode(std::span<const std::int32_t>(&id, 1), false);
  }
  int max_model_len() const override { return max_model_len_; }
  int vocab_size() const override { return engine_->vocab_size(); }

 private:
  static Tokenizer load_tokenizer(const EngineSettings& s) {
    spdlog::info("loading tokenizer from {}/tokenizer.json", s.model_dir);
    return Tokenizer::load(s.model_dir);
  }

  void make_cpu_runner(const EngineSettings& s) {
    try {
      spdlog::info("CPU matmul kernels: {}", describe_cpu_kernels());
    } catch (const std::invalid_argument& e) {
      throw SetupError("PAGEDSERVE_CPU_KERNEL", e.what());
    }
    auto t0 = std::chrono::steady_clock::now();
    model_ = std::make_unique<LlamaModel>(config_, weight_source(s), pool_, s.max_num_batched_tokens);
    spdlog::info("weights ready in {:.2f} s ({:.1f} MiB of projections), {} CPU threads", seconds_since(t0),
                 double(model_->weights().bytes_read_per_step()) / (1 << 20), pool_.size());
    KVCacheConfig kv;
    kv.num_layers = config_.num_hidden_layers;
    kv.num_kv_heads = config_.num_key_value_heads;
    kv.head_dim = config_.head_dim;
    kv.page_size = s.page_size;
    kv.dtype = kv_dtype(s.kv_cache_dtype);
    kv.device = Device::cpu;
    kv.memory_budget_bytes = s.kv_cache_memory_bytes != 0 ? s.kv_cache_memory_bytes : std::size_t(1) << 30;
    owned_cache_ = std::make_unique<KVCache>(kv);
    cache_ = owned_cache_.get();
    spdlog::info("KV cache: {} pages x {} tokens = {} tokens ({} per page, {:.1f} MiB, {})",
                 cache_->num_pages(), cache_->page_size(),
                 (long long)cache_->num_pages() * cache_->page_size(), KVCache::bytes_per_page(kv),
                 double(KVCache::bytes_per_page(kv)) * cache_->num_pages() / (1 << 20), s.kv_cache_dtype);
    runner_ = std::make_unique<CpuModelRunner>(*model_, *owned_cache_, s.max_num_seqs);
  }

  void make_cuda_runner(const EngineSettings& s) {
#ifdef PAGEDSERVE_HAVE_CUDA
    if (s.kv_cache_dtype == "f32") {
      throw SetupError("--kv-cache-dtype f32",
                       "not supported on --backend cuda (the GPU kernels take bf16 or f16)");
    }
    CudaRunnerOptions options;
    options.device = s.device;
    options.gpu_memory_utilization = s.gpu_memory_utilization;
    options.enforce_eager = s.enforce_eager;
    if (s.kv_cache_memory_bytes != 0) options.kv_cache_memory_bytes = s.kv_cache_memory_bytes;
    options.page_size = s.page_size;
    options.max_num_seqs = s.max_num_seqs;
    options.max_num_batched_tokens = s.max_num_batched_tokens;
    options.max_model_len = max_model_len_;
    auto runner = std::make_unique<CudaModelRunner>(config_, weight_source(s), options, pool_);
    if (s.kv_cache_dtype != dtype_name(runner->activation_dtype())) {
      spdlog::warn("--kv-cache-dtype {} ignored on CUDA: the cache holds the activation dtype {}",
                   s.kv_cache_dtype, dtype_name(runner->activation_dtype()));
    }
    cache_ = &runner->kv_cache();
    runner_ = std::move(runner);
#else
    (void)s;
    throw SetupError("--backend cuda", "this build has no CUDA backend (built without nvcc)");
#endif
  }

  ThreadPool pool_;
  ModelConfig config_;
  Tokenizer tokenizer_;
  std::unique_ptr<LlamaModel> model_;     // CPU backend
  std::unique_ptr<KVCache> owned_cache_;  // CPU backend
  const KVCache* cache_ = nullptr;        // the runner's cache
  std::unique_ptr<ModelRunner> runner_;
  std::unique_ptr<Engine> engine_;
  int max_model_len_ = 0;
};

}  // namespace

std::shared_ptr<CompletionBackend> load_engine_backend(const EngineSettings& settings) {
  return std::make_shared<EngineBackend>(settings);
}

}  // namespace pagedserve
