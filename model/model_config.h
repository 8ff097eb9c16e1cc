// The architecture of a Llama-family checkpoint, read from a Hugging Face model directory
// (config.json, plus generation_config.json when present). A plain value; made once at startup,
// then read-only and shareable between threads.
//
// Supported: LlamaForCausalLM, Qwen2ForCausalLM (QKV bias), Qwen3ForCausalLM (q/k RMSNorm),
// MistralForCausalLM. Anything else, a missing required field or a field of the wrong type throws
// SetupError naming the file and the field.
//
// Sliding window: the attention kernels only do full causal attention. Full attention equals
// sliding-window attention for every sequence no longer than the window, so when a window smaller
// than max_position_embeddings is active (Mistral v0.1 style; Qwen2/3 only with
// use_sliding_window) max_position_embeddings is clamped to the window and a warning is logged.
// The engine refuses longer requests, so no request ever needs the window.
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

// rope_scaling from config.json. `none` covers null, an absent field and type "default".
struct RopeScaling {
  enum class Type : std::uint8_t { none, llama3 };
  Type type = Type::none;
  // llama3: wavelengths above original_max_position_embeddings / low_freq_factor are divided by
  // `factor`, those below original / high_freq_factor are kept, the band between is interpolated.
  double factor = 1.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  int original_max_position_embeddings = 8192;
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

  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  double rms_norm_eps = 1e-6;
  bool tie_word_embeddings = false;
  // The longest sequence the model serves (already clamped to an active sliding window).
  int max_position_embeddings = 0;
  DType torch_dtype = DType::bf16;  // "torch_dtype" (or newer "dtype"); bf16 when absent
  bool attention_bias = false;
  std::optional<int> sliding_window;  // only when active (see the file comment)

  std::optional<std::int32_t> bos_token_id;
  std::vector<std::int32_t> eos_token_ids;  // generation_config.json wins over config.json

  // Derived: QKV projections carry a bias (Qwen2, or attention_bias); q and k go through a
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
