#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

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

// The same two models as config.json files written by transformers 5.x: rope_theta and the RoPE
// scaling live under rope_parameters, "dtype" replaces "torch_dtype", layer_types is spelled out.
const char* kLlama31ConfigV5 = R"({
  "architectures": ["LlamaForCausalLM"],
  "attention_bias": false,
  "attention_dropout": 0.0,
  "bos_token_id": 128000,
  "dtype": "bfloat16",
  "eos_token_id": [128001, 128008, 128009],
  "head_dim": 128,
  "hidden_act": "silu",
  "hidden_size": 4096,
  "initializer_range": 0.02,
  "intermediate_size": 14336,
  "max_position_embeddings": 131072,
  "mlp_bias": false,
  "model_type": "llama",
  "num_attention_heads": 32,
  "num_hidden_layers": 32,
  "num_key_value_heads": 8,
  "pad_token_id": null,
  "pretraining_tp": 1,
  "rms_norm_eps": 1e-05,
  "rope_parameters": {
    "factor": 8.0,
    "high_freq_factor": 4.0,
    "low_freq_factor": 1.0,
    "original_max_position_embeddings": 8192,
    "rope_theta": 500000.0,
    "rope_type": "llama3"
  },
  "tie_word_embeddings": false,
  "transformers_version": "5.0.0",
  "use_cache": true,
  "vocab_size": 128256
})";

const char* kQwen3ConfigV5 = R"({
  "architectures": ["Qwen3ForCausalLM"],
  "attention_bias": false,
  "attention_dropout": 0.0,
  "bos_token_id": 151643,
  "dtype": "bfloat16",
  "eos_token_id": 151645,
  "head_dim": 128,
  "hidden_act": "silu",
  "hidden_size": 1024,
  "initializer_range": 0.02,
  "intermediate_size": 3072,
  "layer_types": [
    "full_attention", "full_attention", "full_attention", "full_attention", "full_attention",
    "full_attention", "full_attention", "full_attention", "full_attention", "full_attention",
    "full_attention", "full_attention", "full_attention", "full_attention", "full_attention",
    "full_attention", "full_attention", "full_attention", "full_attention", "full_attention",
    "full_attention", "full_attention", "full_attention", "full_attention", "full_attention",
    "full_attention", "full_attention", "full_attention"
  ],
  "max_position_embeddings": 40960,
  "max_window_layers": 28,
  "model_type": "qwen3",
  "num_attention_heads": 16,
  "num_hidden_layers": 28,
  "num_key_value_heads": 8,
  "pad_token_id": null,
  "rms_norm_eps": 1e-06,
  "rope_parameters": {
    "rope_theta": 1000000,
    "rope_type": "default"
  },
  "sliding_window": null,
  "tie_word_embeddings": true,
  "transformers_version": "5.0.0",
  "use_cache": true,
  "use_sliding_window": false,
  "vocab_size": 151936
})";

// Every field of two configs, one by one.
void expect_same(const ModelConfig& a, const ModelConfig& b) {
  EXPECT_EQ(a.architecture_name, b.architecture_name);
  EXPECT_EQ(a.architecture, b.architecture);
  EXPECT_EQ(a.hidden_size, b.hidden_size);
  EXPECT_EQ(a.num_hidden_layers, b.num_hidden_layers);
  EXPECT_EQ(a.num_attention_heads, b.num_attention_heads);
  EXPECT_EQ(a.num_key_value_heads, b.num_key_value_heads);
  EXPECT_EQ(a.head_dim, b.head_dim);
  EXPECT_EQ(a.intermediate_size, b.intermediate_size);
  EXPECT_EQ(a.vocab_size, b.vocab_size);
  EXPECT_DOUBLE_EQ(a.rope_theta, b.rope_theta);
  EXPECT_EQ(a.rope_scaling.type, b.rope_scaling.type);
  EXPECT_DOUBLE_EQ(a.rope_scaling.factor, b.rope_scaling.factor);
  EXPECT_DOUBLE_EQ(a.rope_scaling.low_freq_factor, b.rope_scaling.low_freq_factor);
  EXPECT_DOUBLE_EQ(a.rope_scaling.high_freq_factor, b.rope_scaling.high_freq_factor);
  EXPECT_EQ(a.rope_scaling.original_max_position_embeddings, b.rope_scaling.original_max_position_embeddings);
  EXPECT_DOUBLE_EQ(a.rms_norm_eps, b.rms_norm_eps);
  EXPECT_EQ(a.tie_word_embeddings, b.tie_word_embeddings);
  EXPECT_EQ(a.max_position_embeddings, b.max_position_embeddings);
  EXPECT_EQ(a.torch_dtype, b.torch_dtype);
  EXPECT_EQ(a.attention_bias, b.attention_bias);
  EXPECT_EQ(a.sliding_window, b.sliding_window);
  EXPECT_EQ(a.bos_token_id, b.bos_token_id);
  EXPECT_EQ(a.eos_token_ids, b.eos_token_ids);
  EXPECT_EQ(a.has_qkv_bias, b.has_qkv_bias);
  EXPECT_EQ(a.has_qk_norm, b.has_qk_norm);
}

nlohmann::json parsed(const char* text) { return nlohmann::json::parse(text); }

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

// HF Llama/Mistral/Qwen3 put attention_bias on o_proj too, which is not implemented; Qwen2 biases
// q/k/v only (implemented) and does not read the key.
TEST(ModelConfig, AttentionBiasRefusedExceptOnQwen2) {
  for (const char* text : {kLlama31Config, kMistral01Config, kQwen3Config}) {
    nlohmann::json json = parsed(text);
    json["attention_bias"] = true;
    SCOPED_TRACE(json["architectures"][0].get<std::string>());
    expect_setup_error([&] { parse_model_config(json.dump(), {}, "m/config.json"); },
                       {"m/config.json", "'attention_bias'", "true", "not implemented", "o_proj"});
  }
  nlohmann::json qwen2 = parsed(kQwen2Config);
  qwen2["attention_bias"] = true;
  EXPECT_TRUE(parse_model_config(qwen2.dump()).has_qkv_bias);
  qwen2["attention_bias"] = false;
  EXPECT_TRUE(parse_model_config(qwen2.dump()).has_qkv_bias);
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

TEST(ModelConfig, TransformersFiveFormParsesLikeTheOldForm) {
  {
    SCOPED_TRACE("Llama-3.1-8B");
    const ModelConfig old_form = parse_model_config(kLlama31Config);
    const ModelConfig new_form = parse_model_config(kLlama31ConfigV5);
    expect_same(old_form, new_form);
    EXPECT_DOUBLE_EQ(new_form.rope_theta, 500000.0);
    EXPECT_EQ(new_form.rope_scaling.type, RopeScaling::Type::llama3);
    EXPECT_DOUBLE_EQ(new_form.rope_scaling.factor, 8.0);
    EXPECT_EQ(new_form.rope_scaling.original_max_position_embeddings, 8192);
    EXPECT_EQ(new_form.torch_dtype, DType::bf16);
  }
  {
    SCOPED_TRACE("Qwen3-0.6B");
    const ModelConfig old_form = parse_model_config(kQwen3Config);
    const ModelConfig new_form = parse_model_config(kQwen3ConfigV5);
    expect_same(old_form, new_form);
    EXPECT_DOUBLE_EQ(new_form.rope_theta, 1e6);  // not the 10000 default
    EXPECT_EQ(new_form.rope_scaling.type, RopeScaling::Type::none);
    EXPECT_TRUE(new_form.has_qk_norm);
  }
  {
    SCOPED_TRACE("f16 in both forms");
    nlohmann::json old_json = parsed(kMistral01Config);
    old_json["torch_dtype"] = "float16";
    nlohmann::json new_json = parsed(kMistral01Config);
    new_json.erase("torch_dtype");
    new_json.erase("rope_theta");
    new_json["dtype"] = "float16";
    new_json["rope_parameters"] = {{"rope_theta", 10000.0}, {"rope_type", "default"}};
    const ModelConfig new_form = parse_model_config(new_json.dump());
    expect_same(parse_model_config(old_json.dump()), new_form);
    EXPECT_EQ(new_form.torch_dtype, DType::f16);
  }
}

TEST(ModelConfig, BothRopeFormsMustAgree) {
  // Transformers 5 with the old keys kept alongside: agreeing is fine.
  nlohmann::json json = parsed(kLlama31ConfigV5);
  json["rope_theta"] = 500000.0;
  json["rope_scaling"] = parsed(kLlama31Config)["rope_scaling"];
  EXPECT_EQ(parse_model_config(json.dump()).rope_scaling.type, RopeScaling::Type::llama3);
  json["rope_scaling"] = nullptr;  // null says nothing
  EXPECT_EQ(parse_model_config(json.dump()).rope_scaling.type, RopeScaling::Type::llama3);

  json["rope_theta"] = 10000.0;
  expect_setup_error([&] { parse_model_config(json.dump()); },
                     {"config.json", "'rope_parameters.rope_theta'", "500000", "'rope_theta'", "10000"});
  json["rope_theta"] = 500000.0;
  json["rope_scaling"] = parsed(kLlama31Config)["rope_scaling"];
  json["rope_scaling"]["factor"] = 4.0;
  expect_setup_error([&] { parse_model_config(json.dump()); },
                     {"'rope_parameters'", "'rope_scaling'", "factor 4"});
  json["rope_scaling"] = {{"rope_type", "default"}};
  expect_setup_error([&] { parse_model_config(json.dump()); }, {"'rope_parameters'", "'rope_scaling'"});
  json["rope_scaling"] = {{"rope_type", "llama3"},
                          {"rope_theta", 1000.0},
                          {"factor", 8.0},
                          {"original_max_position_embeddings", 8192}};
  expect_setup_error([&] { parse_model_config(json.dump()); }, {"'rope_scaling.rope_theta'", "rope_theta"});

  // rope_type and type inside one object must agree too.
  json = parsed(kLlama31ConfigV5);
  json["rope_parameters"]["type"] = "yarn";
  expect_setup_error([&] { parse_model_config(json.dump()); }, {"'rope_parameters.type'", "yarn"});
}

TEST(ModelConfig, RopeParametersWithoutTypeIsDefault) {
  nlohmann::json json = parsed(kQwen3ConfigV5);
  json["rope_parameters"] = {{"rope_theta", 5000000.0}};
  const ModelConfig config = parse_model_config(json.dump());
  EXPECT_DOUBLE_EQ(config.rope_theta, 5e6);
  EXPECT_EQ(config.rope_scaling.type, RopeScaling::Type::none);
  // rope_scaling (4.x) must name its type, as before.
  json = parsed(kQwen3Config);
  json["rope_scaling"] = {{"factor", 2.0}};
  expect_setup_error([&] { parse_model_config(json.dump()); }, {"rope_scaling", "rope_type"});
}

TEST(ModelConfig, RopeParametersPerAttentionTypeRefused) {
  nlohmann::json json = parsed(kQwen3ConfigV5);
  json["rope_parameters"] = {{"full_attention", {{"rope_theta", 1000000.0}, {"rope_type", "default"}}},
                             {"sliding_attention", {{"rope_theta", 10000.0}, {"rope_type", "default"}}}};
  expect_setup_error([&] { parse_model_config(json.dump(), {}, "q/config.json"); },
                     {"q/config.json", "rope_parameters.", "attention", "not implemented"});
}

TEST(ModelConfig, UnimplementedRopeTypesRefusedInBothForms) {
  for (const char* type : {"linear", "dynamic", "yarn", "longrope", "su", "ntk", "mrope", "proportional"}) {
    SCOPED_TRACE(type);
    nlohmann::json old_json = parsed(kLlama31Config);
    old_json["rope_scaling"] = {{"type", type}, {"factor", 4.0}};
    expect_setup_error([&] { parse_model_config(old_json.dump()); },
                       {"config.json", "'rope_scaling.type'", type, "not implemented"});
    nlohmann::json new_json = parsed(kLlama31ConfigV5);
    new_json["rope_parameters"] = {{"rope_type", type}, {"rope_theta", 500000.0}, {"factor", 4.0}};
    expect_setup_error([&] { parse_model_config(new_json.dump()); },
                       {"config.json", "'rope_parameters.rope_type'", type, "not implemented"});
  }
}

TEST(ModelConfig, NonNeutralRopeKeysRefused) {
  const auto v5_with = [](const char* key, nlohmann::json value) {
    nlohmann::json json = parsed(kQwen3ConfigV5);
    json["rope_parameters"][key] = std::move(value);
    return json.dump();
  };
  // Default RoPE: a factor other than 1 (HF would ignore it; the checkpoint means something else).
  expect_setup_error([&] { parse_model_config(v5_with("factor", 4.0)); },
                     {"'rope_parameters.factor'", "4.0", "not implemented"});
  EXPECT_NO_THROW(parse_model_config(v5_with("factor", 1.0)));
  EXPECT_NO_THROW(parse_model_config(v5_with("original_max_position_embeddings", 32768)));
  expect_setup_error([&] { parse_model_config(v5_with("partial_rotary_factor", 0.5)); },
                     {"'rope_parameters.partial_rotary_factor'", "0.5", "not implemented"});
  EXPECT_NO_THROW(parse_model_config(v5_with("partial_rotary_factor", 1.0)));
  expect_setup_error(
      [&] {
        parse_model_config(v5_with("mrope_section", {16, 24, 24}));
      },
      {"'rope_parameters.mrope_section'", "not implemented"});
  // llama3 carrying a yarn key.
  nlohmann::json llama = parsed(kLlama31ConfigV5);
  llama["rope_parameters"]["beta_fast"] = 32.0;
  expect_setup_error([&] { parse_model_config(llama.dump()); },
                     {"'rope_parameters.beta_fast'", "32.0", "llama3", "not implemented"});
  // The old form too.
  llama = parsed(kLlama31Config);
  llama["rope_scaling"]["attention_factor"] = 1.5;
  expect_setup_error([&] { parse_model_config(llama.dump()); },
                     {"'rope_scaling.attention_factor'", "1.5", "not implemented"});
  llama["rope_scaling"] = {{"rope_type", "default"}, {"factor", 2.0}};
  expect_setup_error([&] { parse_model_config(llama.dump()); }, {"'rope_scaling.factor'", "2.0"});
}

// Every key of the deny-list with a non-neutral value: SetupError naming file, field and value.
TEST(ModelConfig, MathChangingKeysRefused) {
  const std::vector<std::pair<std::string, nlohmann::json>> refused = {
      {"mlp_bias", true},
      {"hidden_act", "gelu"},
      {"hidden_act", "gelu_pytorch_tanh"},
      {"hidden_activation", "gelu_pytorch_tanh"},
      {"partial_rotary_factor", 0.5},
      {"rotary_pct", 0.25},
      {"rotary_dim", 64},
      {"rope_interleave", true},
      {"qk_layernorm", true},
      {"use_qk_norm", true},
      {"qk_norm", true},
      {"logit_softcapping", 30.0},
      {"attn_logit_softcapping", 50.0},
      {"final_logit_softcapping", 30.0},
      {"query_pre_attn_scalar", 256},
      {"attention_multiplier", 0.0078125},
      {"embedding_multiplier", 12.0},
      {"scale_emb", 12},
      {"residual_multiplier", 0.22},
      {"logits_scaling", 8.0},
      {"logit_scale", 0.0625},
      {"use_parallel_residual", true},
      {"parallel_attn", true},
      {"use_bidirectional_attention", true},
      {"is_causal", false},
      {"attention_chunk_size", 8192},
      {"no_rope_layers", {1, 1, 1, 0}},
      {"attn_temperature_tuning", true},
      {"dual_chunk_attention_config", {{"chunk_size", 262144}, {"local_size", 8192}}},
      {"num_experts", 8},
      {"num_local_experts", 8},
      {"quantization_config", {{"quant_method", "awq"}, {"bits", 4}}},
  };
  for (const auto& [field, value] : refused) {
    SCOPED_TRACE(field + " = " + value.dump());
    for (const char* text : {kLlama31Config, kLlama31ConfigV5}) {
      nlohmann::json json = parsed(text);
      json[field] = value;
      expect_setup_error(
          [&] { parse_model_config(json.dump(), {}, "llama/config.json"); },
          {"llama/config.json", "'" + field + "'", value.dump().substr(0, 20), "not implemented"});
    }
  }
}

TEST(ModelConfig, NeutralValuesOfDeniedKeysAccepted) {
  const std::vector<std::pair<std::string, nlohmann::json>> neutral = {
      {"mlp_bias", false},
      {"attention_bias", false},
      {"hidden_act", "silu"},
      {"hidden_act", "swish"},
      {"partial_rotary_factor", 1.0},
      {"rotary_dim", 128},  // head_dim
      {"use_qk_norm", false},
      {"logit_softcapping", nullptr},
      {"final_logit_softcapping", nullptr},
      {"embedding_multiplier", 1.0},
      {"is_causal", true},
      {"num_experts", 0},
      {"quantization_config", nullptr},
      {"pretraining_tp", 4},  // math-neutral in HF inference
      {"attention_dropout", 0.1},
  };
  for (const auto& [field, value] : neutral) {
    SCOPED_TRACE(field + " = " + value.dump());
    nlohmann::json json = parsed(kLlama31ConfigV5);
    json[field] = value;
    EXPECT_NO_THROW(parse_model_config(json.dump()));
  }
  // Qwen3 implements q/k norm; HF Qwen3 does not read these keys.
  nlohmann::json qwen3 = parsed(kQwen3ConfigV5);
  qwen3["use_qk_norm"] = true;
  EXPECT_TRUE(parse_model_config(qwen3.dump()).has_qk_norm);
}

TEST(ModelConfig, LayerTypes) {
  nlohmann::json json = parsed(kQwen3ConfigV5);
  json["layer_types"][5] = "chunked_attention";
  expect_setup_error([&] { parse_model_config(json.dump()); },
                     {"config.json", "'layer_types'", "chunked_attention", "not implemented"});
  json["layer_types"][5] = "linear_attention";
  expect_setup_error([&] { parse_model_config(json.dump()); }, {"'layer_types'", "linear_attention"});
  json = parsed(kQwen3ConfigV5);
  json["layer_types"].erase(json["layer_types"].size() - 1);
  expect_setup_error([&] { parse_model_config(json.dump()); }, {"'layer_types'", "27", "28"});

  // sliding_attention layers are served exactly by the context clamp.
  json = parsed(kQwen3ConfigV5);
  json["layer_types"][27] = "sliding_attention";
  json["sliding_window"] = 4096;
  json["max_window_layers"] = 27;
  EXPECT_EQ(parse_model_config(json.dump()).max_position_embeddings, 40960);  // use_sliding_window false
  json["use_sliding_window"] = true;
  EXPECT_EQ(parse_model_config(json.dump()).max_position_embeddings, 4096);
  json.erase("use_sliding_window");  // no key: the sliding layer turns the window on
  const ModelConfig clamped = parse_model_config(json.dump());
  EXPECT_EQ(clamped.max_position_embeddings, 4096);
  EXPECT_EQ(clamped.sliding_window, 4096);
}

TEST(ModelConfig, DtypeWinsOverTorchDtype) {
  nlohmann::json json = parsed(kLlama31Config);
  json["dtype"] = "float32";  // torch_dtype says bfloat16
  EXPECT_EQ(parse_model_config(json.dump()).torch_dtype, DType::f32);
  json.erase("torch_dtype");
  json["dtype"] = "float16";
  EXPECT_EQ(parse_model_config(json.dump()).torch_dtype, DType::f16);
  json["dtype"] = "int8";
  expect_setup_error([&] { parse_model_config(json.dump()); }, {"'dtype'", "int8"});
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
