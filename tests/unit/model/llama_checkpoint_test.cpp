// Loading weights from a safetensors checkpoint: HF names, f32 and bf16 files, tied and untied
// lm_head, and clear errors for a missing tensor or a wrong shape.
#include <gtest/gtest.h>

#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "model/llama_model.h"
#include "model/model_weights.h"
#include "model/safetensors_writer.h"
#include "tests/unit/model/expect_setup_error.h"
#include "tests/unit/model/one_prompt.h"
#include "tests/unit/model/temp_dir.h"

namespace pagedserve {
namespace {

ModelConfig small_config(bool qwen3, bool tied) {
  ModelConfig config;
  config.architecture = qwen3 ? ModelArchitecture::qwen3 : ModelArchitecture::qwen2;
  config.hidden_size = 32;
  config.num_hidden_layers = 2;
  config.num_attention_heads = 4;
  config.num_key_value_heads = 2;
  config.head_dim = 16;
  config.intermediate_size = 40;
  config.vocab_size = 50;
  config.max_position_embeddings = 64;
  config.tie_word_embeddings = tied;
  config.has_qk_norm = qwen3;
  config.has_qkv_bias = !qwen3;
  return config;
}

// The HF tensor list of `weights`, optionally leaving one out or replacing one by a misshapen view.
std::vector<NamedTensor> hf_tensors(const ModelConfig& config, const ModelWeights& weights) {
  std::vector<NamedTensor> tensors = {{"model.embed_tokens.weight", weights.embed_tokens},
                                      {"model.norm.weight", weights.final_norm}};
  if (!config.tie_word_embeddings) tensors.push_back({"lm_head.weight", weights.lm_head});
  for (std::size_t l = 0; l < weights.layers.size(); ++l) {
    const LayerWeights& w = weights.layers[l];
    const std::string p = "model.layers." + std::to_string(l) + ".";
    tensors.push_back({p + "input_layernorm.weight", w.input_norm});
    tensors.push_back({p + "post_attention_layernorm.weight", w.post_attention_norm});
    tensors.push_back({p + "self_attn.q_proj.weight", w.q_proj});
    tensors.push_back({p + "self_attn.k_proj.weight", w.k_proj});
    tensors.push_back({p + "self_attn.v_proj.weight", w.v_proj});
    tensors.push_back({p + "self_attn.o_proj.weight", w.o_proj});
    tensors.push_back({p + "mlp.gate_proj.weight", w.gate_proj});
    tensors.push_back({p + "mlp.up_proj.weight", w.up_proj});
    tensors.push_back({p + "mlp.down_proj.weight", w.down_proj});
    if (config.has_qkv_bias) {
      tensors.push_back({p + "self_attn.q_proj.bias", w.q_bias});
      tensors.push_back({p + "self_attn.k_proj.bias", w.k_bias});
      tensors.push_back({p + "self_attn.v_proj.bias", w.v_bias});
    }
    if (config.has_qk_norm) {
      tensors.push_back({p + "self_attn.q_norm.weight", w.q_norm});
      tensors.push_back({p + "self_attn.k_norm.weight", w.k_norm});
    }
  }
  return tensors;
}

std::vector<float> last_logits(LlamaModel& model, const std::vector<std::int32_t>& prompt) {
  const ModelConfig& config = model.config();
  KVCache cache = testing::f32_cache(config, 2);
  ForwardBatch batch = testing::one_prompt_batch(prompt);
  batch.sample_token_indices = {static_cast<std::int32_t>(prompt.size()) - 1};
  std::vector<float> logits(static_cast<std::size_t>(config.vocab_size));
  model.forward(batch, cache, TensorView(logits.data(), DType::f32, {1, config.vocab_size}));
  return logits;
}

TEST(LlamaCheckpoint, LoadedWeightsGiveTheSameLogitsAsTheirSource) {
  ThreadPool pool(2);
  for (bool qwen3 : {true, false}) {
    for (DType dtype : {DType::f32, DType::bf16}) {
      const ModelConfig config = small_config(qwen3, /*tied=*/qwen3);
      LlamaModel source(config, DummyWeights{7, dtype}, pool, 16);
      testing::TempDir dir;
      write_safetensors(dir.path() / "model.safetensors", hf_tensors(config, source.weights()));
      LlamaModel loaded(config, CheckpointWeights{dir.path()}, pool, 16);
      EXPECT_EQ(loaded.weights().bytes_read_per_step(), source.weights().bytes_read_per_step());
      const std::vector<std::int32_t> prompt = {3, 1, 4, 1, 5, 9, 2, 6};
      EXPECT_EQ(last_logits(loaded, prompt), last_logits(source, prompt))
          << (qwen3 ? "qwen3 " : "qwen2 ") << dtype_name(dtype);
    }
  }
}

TEST(LlamaCheckpoint, MissingOrMisshapenTensorsAreNamed) {
  ThreadPool pool(1);
  const ModelConfig config = small_config(/*qwen3=*/true, /*tied=*/false);
  const ModelWeights weights = ModelWeights::dummy(config, 3, DType::f32);
  {
    std::vector<NamedTensor> tensors = hf_tensors(config, weights);
    std::erase_if(tensors,
                  [](const NamedTensor& t) { return t.name == "model.layers.1.mlp.up_proj.weight"; });
    testing::TempDir dir;
    write_safetensors(dir.path() / "model.safetensors", tensors);
    testing::expect_setup_error([&] { ModelWeights::load(config, dir.path()); },
                                {"model.layers.1.mlp.up_proj.weight"});
  }
  {
    std::vector<NamedTensor> tensors = hf_tensors(config, weights);
    for (NamedTensor& t : tensors) {
      if (t.name == "model.layers.0.self_attn.k_proj.weight")
        t.view = weights.layers[0].q_proj;  // [64, 32] not [32, 32]
    }
    testing::TempDir dir;
    write_safetensors(dir.path() / "model.safetensors", tensors);
    testing::expect_setup_error([&] { ModelWeights::load(config, dir.path()); },
                                {"model.layers.0.self_attn.k_proj.weight", "[64, 32]"});
  }
  {
    // Untied config without lm_head.weight.
    std::vector<NamedTensor> tensors = hf_tensors(config, weights);
    std::erase_if(tensors, [](const NamedTensor& t) { return t.name == "lm_head.weight"; });
    testing::TempDir dir;
    write_safetensors(dir.path() / "model.safetensors", tensors);
    EXPECT_THROW(ModelWeights::load(config, dir.path()), SetupError);
  }
}

}  // namespace
}  // namespace pagedserve
