#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "core/error.h"
#include "model/model_config.h"
#include "tests/unit/model/expect_setup_error.h"
#include "tests/unit/model/temp_dir.h"

namespace pagedserve {
namespace {

using testing::expect_setup_error;

namespace fs = std::filesystem;

const char* kQwen2Config = R"({
  "architectures": ["Qwen2ForCausalLM"], "bos_token_id": 151643, "eos_token_id": 151643,
  "hidden_size": 896, "intermediate_size": 4864, "max_position_embeddings": 32768,
  "num_attention_heads": 14, "num_hidden_layers": 24, "num_key_value_heads": 2,
  "rms_norm_eps": 1e-06, "rope_theta": 1000000.0, "sliding_window": 32768,
  "tie_word_embeddings": true, "torch_dtype": "bfloat16", "use_sliding_window": false,
  "vocab_size": 151936})";

const char* kQwen3Config = R"({
  "architectures": ["Qwen3ForCausalLM"], "attention_bias": false, "bos_token_id": 151643,
  "eos_token_id": 151645, "head_dim": 128, "hidden_size": 1024, "intermediate_size": 3072,
  "max_position_embeddings": 40960, "num_attention_heads": 16, "num_hidden_layers": 28,
  "num_key_value_heads": 8, "rms_norm_eps": 1e-06, "rope_scaling": null, "rope_theta": 1000000,
  "sliding_window": null, "tie_word_embeddings": true, "torch_dtype": "bfloat16", "vocab_size": 151936})";

const char* kLlama31Config = R"({
  "architectures": ["LlamaForCausalLM"], "attention_bias": false, "bos_token_id": 128000,
  "eos_token_id": [128001, 128008, 128009], "hidden_size": 4096, "intermediate_size": 14336,
  "max_position_embeddings": 131072, "num_attention_heads": 32, "num_hidden_layers": 32,
  "num_key_value_heads": 8, "rms_norm_eps": 1e-05,
  "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                   "original_max_position_embeddings": 8192, "rope_type": "llama3"},
  "rope_theta": 500000.0, "tie_word_embeddings": false, "torch_dtype": "bfloat16", "vocab_size": 128256})";

const char* kMistral01Config = R"({
  "architectures": ["MistralForCausalLM"], "bos_token_id": 1, "eos_token_id": 2,
  "hidden_size": 4096, "intermediate_size": 14336, "max_position_embeddings": 32768,
  "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8,
  "rms_norm_eps": 1e-05, "rope_theta": 10000.0, "sliding_window": 4096,
  "tie_word_embeddings": false, "torch_dtype": "bfloat16", "vocab_size": 32000})";

TEST(ModelConfig, Qwen2FromDirectoryWithGenerationConfig) {
  testing::TempDir dir;
  dir.write("config.json", kQwen2Config);
  dir.write("generation_config.json", R"({"bos_token_id": 151643, "eos_token_id": [151645, 151643]})");
  const ModelConfig config = load_model_config(dir.path());
  EXPECT_EQ(config.architecture, ModelArchitecture::qwen2);
  EXPECT_EQ(config.architecture_name, "Qwen2ForCausalLM");
  EXPECT_EQ(config.hidden_size, 896);
  EXPECT_EQ(config.num_hidden_layers, 24);
  EXPECT_EQ(config.num_attention_heads, 14);
  EXPECT_EQ(config.num_key_value_heads, 2);
  EXPECT_EQ(config.head_dim, 64);  // derived: 896 / 14
  EXPECT_EQ(config.intermediate_size, 4864);
  EXPECT_EQ(config.vocab_size, 151936);
  EXPECT_DOUBLE_EQ(config.rope_theta, 1e6);
  EXPECT_EQ(config.rope_scaling.type, RopeScaling::Type::none);
  EXPECT_DOUBLE_EQ(config.rms_norm_eps, 1e-6);
  EXPECT_TRUE(config.tie_word_embeddings);
  EXPECT_EQ(config.max_position_embeddings, 32768);
  EXPECT_FALSE(config.sliding_window.has_value());  // use_sliding_window is false
  EXPECT_EQ(config.torch_dtype, DType::bf16);
  EXPECT_TRUE(config.has_qkv_bias);
  EXPECT_FALSE(config.has_qk_norm);
  EXPECT_EQ(config.bos_token_id, 151643);
  EXPECT_EQ(config.eos_token_ids, (std::vector<std::int32_t>{151645, 151643}));  // generation config wins
  EXPECT_EQ(config.q_size(), 896);
  EXPECT_EQ(config.kv_size(), 128);
}

TEST(ModelConfig, Qwen3HasExplicitHeadDimAndQkNorm) {
  const ModelConfig config = parse_model_config(kQwen3Config);
  EXPECT_EQ(config.architecture, ModelArchitecture::qwen3);
  EXPECT_EQ(config.head_dim, 128);  // not 1024 / 16
  EXPECT_EQ(config.q_size(), 2048);
  EXPECT_TRUE(config.has_qk_norm);
  EXPECT_FALSE(config.has_qkv_bias);
  EXPECT_EQ(config.max_position_embeddings, 40960);
  EXPECT_EQ(config.eos_token_ids, (std::vector<std::int32_t>{151645}));
}

TEST(ModelConfig, Llama31RopeScalingAndEosList) {
  const ModelConfig config = parse_model_config(kLlama31Config);
  EXPECT_EQ(config.architecture, ModelArchitecture::llama);
  EXPECT_EQ(config.rope_scaling.type, RopeScaling::Type::llama3);
  EXPECT_DOUBLE_EQ(config.rope_scaling.factor, 8.0);
  EXPECT_DOUBLE_EQ(config.rope_scaling.low_freq_factor, 1.0);
  EXPECT_DOUBLE_EQ(config.rope_scaling.high_freq_factor, 4.0);
  EXPECT_EQ(config.rope_scaling.original_max_position_embeddings, 8192);
  EXPECT_DOUBLE_EQ(config.rope_theta, 500000.0);
  EXPECT_DOUBLE_EQ(config.rms_norm_eps, 1e-5);
  EXPECT_FALSE(config.tie_word_embeddings);
  EXPECT_FALSE(config.has_qkv_bias);
  EXPECT_EQ(config.head_dim, 128);
  EXPECT_EQ(config.eos_token_ids, (std::vector<std::int32_t>{128001, 128008, 128009}));
  EXPECT_EQ(config.bos_token_id, 128000);
}

TEST(ModelConfig, AttentionBiasGivesQkvBiasOnLlama) {
  nlohmann::json json = nlohmann::json::parse(kLlama31Config);
  json["attention_bias"] = true;
  EXPECT_TRUE(parse_model_config(json.dump()).has_qkv_bias);
}

TEST(ModelConfig, MistralSlidingWindowClampsTheContext) {
  const ModelConfig config = parse_model_config(kMistral01Config);
  EXPECT_EQ(config.architecture, ModelArchitecture::mistral);
  ASSERT_TRUE(config.sliding_window.has_value());
  EXPECT_EQ(*config.sliding_window, 4096);
  EXPECT_EQ(config.max_position_embeddings, 4096);

  nlohmann::json json = nlohmann::json::parse(kMistral01Config);
  json["sliding_window"] = nullptr;
  const ModelConfig unwindowed = parse_model_config(json.dump());
  EXPECT_FALSE(unwindowed.sliding_window.has_value());
  EXPECT_EQ(unwindowed.max_position_embeddings, 32768);
}

TEST(ModelConfig, QwenSlidingWindowOnlyWithUseSlidingWindow) {
  nlohmann::json json = nlohmann::json::parse(kQwen2Config);
  json["sliding_window"] = 4096;
  EXPECT_EQ(parse_model_config(json.dump()).max_position_embeddings, 32768);
  json["use_sliding_window"] = true;
  EXPECT_EQ(parse_model_config(json.dump()).max_position_embeddings, 4096);
}

TEST(ModelConfig, DefaultsForOptionalFields) {
  const ModelConfig config = parse_model_config(R"({"architectures": ["LlamaForCausalLM"],
      "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
      "intermediate_size": 128, "vocab_size": 1000})");
  EXPECT_EQ(config.num_key_value_heads, 4);
  EXPECT_EQ(config.head_dim, 16);
  EXPECT_DOUBLE_EQ(config.rope_theta, 10000.0);
  EXPECT_DOUBLE_EQ(config.rms_norm_eps, 1e-6);
  EXPECT_FALSE(config.tie_word_embeddings);
  EXPECT_EQ(config.max_position_embeddings, 2048);
  EXPECT_FALSE(config.bos_token_id.has_value());
  EXPECT_TRUE(config.eos_token_ids.empty());
}

TEST(ModelConfig, MissingRequiredFieldNamesFileAndField) {
  testing::TempDir dir;
  for (const char* field : {"architectures", "hidden_size", "num_hidden_layers", "num_attention_heads",
                            "intermediate_size", "vocab_size"}) {
    SCOPED_TRACE(field);
    nlohmann::json json = nlohmann::json::parse(kQwen3Config);
    json.erase(field);
    dir.write("config.json", json.dump());
    expect_setup_error([&] { load_model_config(dir.path()); },
                       {(dir.path() / "config.json").string(), std::string("'") + field + "'"});
  }
}

TEST(ModelConfig, WrongTypesAndValuesNameTheField) {
  const auto with = [](const char* field, nlohmann::json value) {
    nlohmann::json json = nlohmann::json::parse(kLlama31Config);
    json[field] = std::move(value);
    return json.dump();
  };
  expect_setup_error([&] { parse_model_config(with("hidden_size", "4096")); }, {"hidden_size", "integer"});
  expect_setup_error([&] { parse_model_config(with("num_hidden_layers", 0)); }, {"num_hidden_layers"});
  expect_setup_error([&] { parse_model_config(with("num_key_value_heads", 5)); }, {"num_key_value_heads"});
  expect_setup_error([&] { parse_model_config(with("rope_theta", "big")); }, {"rope_theta"});
  expect_setup_error([&] { parse_model_config(with("tie_word_embeddings", 1)); }, {"tie_word_embeddings"});
  expect_setup_error([&] { parse_model_config(with("torch_dtype", "int8")); }, {"torch_dtype", "int8"});
  expect_setup_error([&] { parse_model_config(with("eos_token_id", "x")); }, {"eos_token_id"});
  expect_setup_error([&] { parse_model_config(with("eos_token_id", 999999)); },
                     {"eos_token_id", "vocabulary"});
  expect_setup_error([&] { parse_model_config(with("head_dim", 7)); }, {"head_dim"});
}

TEST(ModelConfig, UnknownArchitectureIsNamed) {
  nlohmann::json json = nlohmann::json::parse(kLlama31Config);
  json["architectures"] = {"GPTNeoXForCausalLM"};
  expect_setup_error([&] { parse_model_config(json.dump(), {}, "some/config.json"); },
                     {"some/config.json", "architectures", "GPTNeoXForCausalLM"});
}

TEST(ModelConfig, RopeScalingTypes) {
  nlohmann::json json = nlohmann::json::parse(kLlama31Config);
  json["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}};
  expect_setup_error([&] { parse_model_config(json.dump()); }, {"rope_scaling", "yarn"});
  json["rope_scaling"] = {{"type", "default"}};
  EXPECT_EQ(parse_model_config(json.dump()).rope_scaling.type, RopeScaling::Type::none);
  json["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}};  // no original_max_position_embeddings
  expect_setup_error([&] { parse_model_config(json.dump()); }, {"original_max_position_embeddings"});
  json["rope_scaling"] = "llama3";
  expect_setup_error([&] { parse_model_config(json.dump()); }, {"rope_scaling"});
}

TEST(ModelConfig, BrokenFiles) {
  testing::TempDir dir;
  expect_setup_error([&] { load_model_config(dir.path()); }, {"config.json", "not found"});
  dir.write("config.json", "{\"architectures\": [");
  expect_setup_error([&] { load_model_config(dir.path()); }, {"config.json", "JSON"});
  dir.write("config.json", "[1, 2]");
  expect_setup_error([&] { load_model_config(dir.path()); }, {"config.json", "object"});
  dir.write("config.json", kQwen3Config);
  dir.write("generation_config.json", "{\"eos_token_id\": \"none\"}");
  expect_setup_error([&] { load_model_config(dir.path()); }, {"generation_config.json", "eos_token_id"});
}

// The presets under configs/models must load and keep the published dimensions.
TEST(ModelConfig, PresetsLoad) {
  const fs::path presets = fs::path(PAGEDSERVE_SOURCE_DIR) / "configs" / "models";
  const ModelConfig qwen25 = load_model_config(presets / "qwen2.5-0.5b");
  EXPECT_EQ(qwen25.hidden_size, 896);
  EXPECT_EQ(qwen25.num_hidden_layers, 24);
  EXPECT_TRUE(qwen25.has_qkv_bias);
  const ModelConfig qwen3 = load_model_config(presets / "qwen3-0.6b");
  EXPECT_EQ(qwen3.head_dim, 128);
  EXPECT_TRUE(qwen3.has_qk_norm);
  const ModelConfig llama8b = load_model_config(presets / "llama-3.1-8b");
  EXPECT_EQ(llama8b.num_key_value_heads, 8);
  EXPECT_EQ(llama8b.rope_scaling.type, RopeScaling::Type::llama3);
  const ModelConfig llama1b = load_model_config(presets / "llama-3.2-1b");
  EXPECT_EQ(llama1b.head_dim, 64);
  EXPECT_TRUE(llama1b.tie_word_embeddings);
  EXPECT_DOUBLE_EQ(llama1b.rope_scaling.factor, 32.0);
  const ModelConfig mistral = load_model_config(presets / "mistral-7b");
  EXPECT_EQ(mistral.architecture, ModelArchitecture::mistral);
  EXPECT_EQ(mistral.vocab_size, 32768);
  EXPECT_EQ(mistral.max_position_embeddings, 32768);
}

}  // namespace
}  // namespace pagedserve
