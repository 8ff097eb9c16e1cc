// The architecture of a Llama-family checkpoint, read from a Hugging Face model directory
// (config.json, plus generation_config.json when present). A plain value; made once at startup,
// then read-only and shareable between threads.
//
// Supported: LlamaForCausalLM, Qwen2ForCausalLM (QKV bias), Qwen3ForCausalLM (q/k RMSNorm),
// MistralForCausalLM. Anything else, a missing required field or a field of the wrong type throws
// SetupError naming the file and the field.
//
// Both config.json forms are read: transformers 4.x (top-level rope_theta, rope_scaling,
// torch_dtype) and transformers 5.x (rope_parameters holding rope_theta, rope_type and the scaling
// fields; dtype). Where both forms are present, rope_theta and the scaling must agree (else
// SetupError naming both fields); dtype wins over torch_dtype (with a warning when they differ).
// RoPE parameters keyed per attention type ({"full_attention": {...}, ...}) are refused.
//
// Refused, never ignored (SetupError naming the file, the field and the value, "not
// implemented"): every key that changes the math and is not implemented. The one list of them is
// kDeniedKeys in model_config.cpp, plus the RoPE checks: rope types other than default and llama3
// (linear, dynamic, yarn, longrope/su, mrope...), a default-type factor other than 1, any other
// non-neutral key in rope_scaling / rope_parameters, partial_rotary_factor != 1; attention_bias:
// true on Llama/Mistral/Qwen3 (HF puts a bias on o_proj too, not implemented; Qwen2's q/k/v bias
// is, and Qwen2 ignores the key); mlp_bias: true; hidden_act other than silu; q/k norm keys on
// anything but Qwen3; logit soft-capping; layer_types entries other than full_attention and
// sliding_attention; quantization_config. pretraining_tp, dropouts and other keys HF inference
// does not use are accepted.
//
// Sliding window: the attention kernels only do full causal attention. Full attention equals
// sliding-window attention for every sequence no longer than the window, so when a window smaller
// than max_position_embeddings is active (Mistral v0.1 style; Qwen2/3 only with
// use_sliding_window, or, without that key, when layer_types names a sliding_attention layer)
// max_position_embeddings is clamped to the window and a warning is logged. The engine refuses
// longer requests, so no request ever needs the window; sliding_attention entries in layer_types
// are exact for the same reason.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/dtype.h"

namespace pagedserve {

enum class ModelArchitecture : std::uint8_t { llama, qwen2, qwen3, mistral };

std::string_view architecture_name(ModelArchitecture architecture) noexcept;

// rope_scaling (or rope_parameters) from config.json. `none` covers null, an absent field and type
// "default".
struct RopeScaling {
  enum class Type : std::uint8_t { none, llama3 };
  Type type = Type::none;
  // llama3: wavelengths above original_max_position_embeddings / low_freq_factor are divided by
  // `factor`, those below original / high_freq_factor are kept, the band between is interpolated.
  double factor = 1.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  int original_max_position_embeddings = 8192;

  bool operator==(const RopeScaling&) const = default;
};

struct ModelConfig {
  std::string architecture_name;  // as written in config.json, e.g. "Qwen3ForCausalLM"
  ModelArchitecture architecture = ModelArchitecture::llama;

  int hidden_size = 0;
  int num_hidden_layers = 0;
  int num_attention_heads = 0;
  int num_key_value_heads = 0;  // defaults to num_attention_heads
  int head_dim = 0;             // defaults to hidden_size / num_attention_heads
  int intermediate_size = 0;
  int vocab_size = 0;

  double rope_theta = 10000.0;  // rope_theta or rope_parameters.rope_theta
  RopeScaling rope_scaling;     // rope_scaling or rope_parameters
  double rms_norm_eps = 1e-6;
  bool tie_word_embeddings = false;
  // The longest sequence the model serves (already clamped to an active sliding window).
  int max_position_embeddings = 0;
  DType torch_dtype = DType::bf16;    // "torch_dtype" (or newer "dtype"); bf16 when absent
  bool attention_bias = false;        // as read; true only passes on Qwen2, which ignores it
  std::optional<int> sliding_window;  // only when active (see the file comment)

  std::optional<std::int32_t> bos_token_id;
  std::vector<std::int32_t> eos_token_ids;  // generation_config.json wins over config.json

  // Derived: QKV projections carry a bias (Qwen2); q and k go through a
  // per-head RMSNorm (weight [head_dim]) before RoPE (Qwen3).
  bool has_qkv_bias = false;
  bool has_qk_norm = false;

  int q_size() const noexcept { return num_attention_heads * head_dim; }   // q_proj output width
  int kv_size() const noexcept { return num_key_value_heads * head_dim; }  // k_proj/v_proj width
};

// Reads <model_dir>/config.json and, when present, <model_dir>/generation_config.json.
ModelConfig load_model_config(const std::filesystem::path& model_dir);

// The same from strings; `source` names config.json in error messages. An empty
// `generation_config_json` means there is none.
ModelConfig parse_model_config(std::string_view config_json, std::string_view generation_config_json = {},
                               const std::string& source = "config.json",
                               const std::string& generation_source = "generation_config.json");

}  // namespace pagedserve
