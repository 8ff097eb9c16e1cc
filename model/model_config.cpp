#include "model/model_config.h"

#include <spdlog/spdlog.h>

#include <cmath>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>
#include <utility>
#include <vector>

#include "core/error.h"

namespace pagedserve {
namespace {

using nlohmann::json;

// Reads fields of one JSON object and names `source` and the field in every error.
// `prefix` is put before every field name in messages ("rope_parameters." for a nested object).
class FieldReader {
 public:
  FieldReader(const json& object, const std::string& source, std::string prefix = {})
      : object_(object), source_(source), prefix_(std::move(prefix)) {}

  const json* find(const std::string& field) const {
    auto it = object_.find(field);
    if (it == object_.end() || it->is_null()) return nullptr;
    return &*it;
  }

  [[noreturn]] void fail(const std::string& field, const std::string& reason) const {
    throw SetupError(source_ + ": field '" + prefix_ + field + "'", reason);
  }

  int required_int(const std::string& field) const {
    const json* value = find(field);
    if (value == nullptr) fail(field, "missing (required)");
    return to_int(field, *value);
  }

  int positive_int(const std::string& field) const {
    const int value = required_int(field);
    if (value <= 0) fail(field, "must be positive, got " + std::to_string(value));
    return value;
  }

  std::optional<int> optional_int(const std::string& field) const {
    const json* value = find(field);
    if (value == nullptr) return std::nullopt;
    return to_int(field, *value);
  }

  double number_or(const std::string& field, double fallback) const {
    const json* value = find(field);
    if (value == nullptr) return fallback;
    if (!value->is_number()) fail(field, "expected a number, got " + value->dump());
    const double number = value->get<double>();
    if (!std::isfinite(number)) fail(field, "must be finite");
    return number;
  }

  bool bool_or(const std::string& field, bool fallback) const {
    const json* value = find(field);
    if (value == nullptr) return fallback;
    if (!value->is_boolean()) fail(field, "expected true or false, got " + value->dump());
    return value->get<bool>();
  }

  // An int, a list of ints, or null/absent (nullopt).
  std::optional<std::vector<std::int32_t>> optional_int_list(const std::string& field) const {
    const json* value = find(field);
    if (value == nullptr) return std::nullopt;
    std::vector<std::int32_t> ids;
    if (value->is_array()) {
      for (const json& item : *value) ids.push_back(to_int(field, item));
    } else {
      ids.push_back(to_int(field, *value));
    }
    return ids;
  }

  const std::string& source() const { return source_; }

 private:
  int to_int(const std::string& field, const json& value) const {
    if (!value.is_number_integer()) fail(field, "expected an integer, got " + value.dump());
    const auto number = value.get<std::int64_t>();
    if (number < std::numeric_limits<int>::min() || number > std::numeric_limits<int>::max()) {
      fail(field, "out of range: " + value.dump());
    }
    return static_cast<int>(number);
  }

  const json& object_;
  const std::string& source_;
  std::string prefix_;
};

// A JSON value for a message, cut short when long (a quantization_config, say).
std::string short_dump(const json& value) {
  std::string text = value.dump();
  constexpr std::size_t kMax = 120;
  if (text.size() > kMax) text = text.substr(0, kMax) + "...";
  return text;
}

json parse_object(std::string_view text, const std::string& source) {
  json parsed = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) throw SetupError(source, "not valid JSON");
  if (!parsed.is_object()) throw SetupError(source, "expected a JSON object at the top level");
  return parsed;
}

ModelArchitecture parse_architecture(const FieldReader& reader, std::string& name) {
  const json* architectures = reader.find("architectures");
  if (architectures == nullptr) reader.fail("architectures", "missing (required)");
  if (!architectures->is_array() || architectures->empty() || !(*architectures)[0].is_string()) {
    reader.fail("architectures", "expected a non-empty list of names, got " + architectures->dump());
  }
  name = (*architectures)[0].get<std::string>();
  if (name == "LlamaForCausalLM") return ModelArchitecture::llama;
  if (name == "Qwen2ForCausalLM") return ModelArchitecture::qwen2;
  if (name == "Qwen3ForCausalLM") return ModelArchitecture::qwen3;
  if (name == "MistralForCausalLM") return ModelArchitecture::mistral;
  reader.fail("architectures", "unsupported architecture '" + name +
                                   "' (supported: LlamaForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM, "
                                   "MistralForCausalLM)");
}

std::string describe(const RopeScaling& scaling) {
  if (scaling.type == RopeScaling::Type::none) return "default";
  std::ostringstream text;
  text << "llama3, factor " << scaling.factor << ", low_freq_factor " << scaling.low_freq_factor
       << ", high_freq_factor " << scaling.high_freq_factor << ", original_max_position_embeddings "
       << scaling.original_max_position_embeddings;
  return text.str();
}

// What one RoPE object says: rope_scaling (transformers 4.x) or rope_parameters (5.x).
struct RopeObject {
  std::optional<double> theta;  // rope_parameters carries it; rope_scaling normally not
  RopeScaling scaling;
};

// Reads `field` ("rope_scaling" or "rope_parameters"), refusing every rope type but default and
// llama3 and every key those two types do not use unless it has its neutral value. rope_scaling
// must name its type; rope_parameters without one is "default", as transformers 5 reads it.
std::optional<RopeObject> parse_rope_object(const FieldReader& reader, const std::string& field) {
  const json* value = reader.find(field);
  if (value == nullptr) return std::nullopt;
  if (!value->is_object()) reader.fail(field, "expected an object or null, got " + short_dump(*value));
  // Models that mix attention types may key the parameters by layer type
  // ({"full_attention": {...}, "sliding_attention": {...}}).
  for (auto it = value->begin(); it != value->end(); ++it) {
    if (it->is_object()) {
      reader.fail(field + "." + it.key(),
                  "RoPE parameters per attention type are not implemented (one RoPE for every layer only)");
    }
  }
  const FieldReader inner(*value, reader.source(), field + ".");
  std::string type;
  std::string type_key;
  for (const char* key : {"rope_type", "type"}) {
    const json* t = inner.find(key);
    if (t == nullptr) continue;
    if (!t->is_string()) inner.fail(key, "expected a string, got " + short_dump(*t));
    if (type_key.empty()) {
      type = t->get<std::string>();
      type_key = key;
    } else if (t->get<std::string>() != type) {
      inner.fail(key, "'" + t->get<std::string>() + "' disagrees with rope_type '" + type + "'");
    }
  }
  if (type_key.empty()) {
    if (field == "rope_scaling") reader.fail(field, "has no 'rope_type' (or 'type')");
    type = "default";
    type_key = "rope_type";
  }
  const bool llama3 = type == "llama3";
  if (!llama3 && type != "default") {
    inner.fail(type_key, "rope type '" + type + "' is not implemented (implemented: default, llama3)");
  }

  RopeObject rope;
  if (inner.find("rope_theta") != nullptr) rope.theta = inner.number_or("rope_theta", 0.0);
  if (llama3) {
    RopeScaling& scaling = rope.scaling;
    scaling.type = RopeScaling::Type::llama3;
    scaling.factor = inner.number_or("factor", 0.0);
    if (!(scaling.factor > 0.0)) inner.fail("factor", "missing or not positive");
    scaling.low_freq_factor = inner.number_or("low_freq_factor", scaling.low_freq_factor);
    scaling.high_freq_factor = inner.number_or("high_freq_factor", scaling.high_freq_factor);
    if (!(scaling.high_freq_factor > scaling.low_freq_factor) || !(scaling.low_freq_factor > 0.0)) {
      inner.fail("high_freq_factor", "llama3 scaling needs 0 < low_freq_factor < high_freq_factor");
    }
    scaling.original_max_position_embeddings = inner.positive_int("original_max_position_embeddings");
  }

  // Every other key must be one the type does not use for the math, or hold its neutral value.
  for (auto it = value->begin(); it != value->end(); ++it) {
    const std::string& key = it.key();
    if (it->is_null() || key == "rope_type" || key == "type" || key == "rope_theta") continue;
    if (llama3 && (key == "factor" || key == "low_freq_factor" || key == "high_freq_factor" ||
                   key == "original_max_position_embeddings")) {
      continue;
    }
    // Default RoPE does not read original_max_position_embeddings (HF neither).
    if (!llama3 && key == "original_max_position_embeddings") continue;
    const bool neutral_one = key == "factor" || key == "partial_rotary_factor" || key == "attention_factor";
    if (neutral_one && it->is_number() && it->get<double>() == 1.0) continue;
    inner.fail(key, short_dump(*it) + " is not implemented for rope type '" + type + "'" +
                        (neutral_one ? " (only 1.0)" : ""));
  }
  return rope;
}

// rope_theta and the scaling, from either form; where both forms say something they must agree.
void parse_rope(const FieldReader& reader, ModelConfig& config) {
  const std::optional<RopeObject> old_form = parse_rope_object(reader, "rope_scaling");
  const std::optional<RopeObject> new_form = parse_rope_object(reader, "rope_parameters");

  std::vector<std::pair<std::string, double>> thetas;
  if (reader.find("rope_theta") != nullptr)
    thetas.emplace_back("rope_theta", reader.number_or("rope_theta", 0.0));
  if (old_form && old_form->theta) thetas.emplace_back("rope_scaling.rope_theta", *old_form->theta);
  if (new_form && new_form->theta) thetas.emplace_back("rope_parameters.rope_theta", *new_form->theta);
  for (const auto& [field, theta] : thetas) {
    if (theta != thetas.front().second) {
      std::ostringstream reason;
      reason << theta << " disagrees with '" << thetas.front().first << "' " << thetas.front().second;
      reader.fail(field, reason.str());
    }
  }
  if (!thetas.empty()) config.rope_theta = thetas.front().second;

  if (old_form && new_form && !(old_form->scaling == new_form->scaling)) {
    reader.fail("rope_parameters", "(" + describe(new_form->scaling) + ") disagrees with 'rope_scaling' (" +
                                       describe(old_form->scaling) + ")");
  }
  if (new_form) {
    config.rope_scaling = new_form->scaling;
  } else if (old_form) {
    config.rope_scaling = old_form->scaling;
  }
}

std::optional<DType> parse_dtype_field(const FieldReader& reader, const char* key) {
  const json* value = reader.find(key);
  if (value == nullptr) return std::nullopt;
  if (!value->is_string()) reader.fail(key, "expected a string, got " + short_dump(*value));
  const std::string name = value->get<std::string>();
  if (name == "bfloat16") return DType::bf16;
  if (name == "float16" || name == "half") return DType::f16;
  if (name == "float32" || name == "float") return DType::f32;
  reader.fail(key, "unsupported dtype '" + name + "' (supported: bfloat16, float16, float32)");
}

// "dtype" (transformers 5) wins over "torch_dtype" (4.x) when both are present and disagree.
DType parse_dtype(const FieldReader& reader) {
  const std::optional<DType> dtype = parse_dtype_field(reader, "dtype");
  const std::optional<DType> torch_dtype = parse_dtype_field(reader, "torch_dtype");
  if (dtype && torch_dtype && *dtype != *torch_dtype) {
    spdlog::warn("{}: 'dtype' ({}) and 'torch_dtype' ({}) disagree; using 'dtype'", reader.source(),
                 dtype_name(*dtype), dtype_name(*torch_dtype));
  }
  return dtype.value_or(torch_dtype.value_or(DType::bf16));
}

// ---- Config keys that change the math and are not implemented ---------------------------------
// The one deny-list. A key listed here that is present with anything but its neutral value throws
// SetupError naming the file, the key and the value: a checkpoint that needs it would otherwise
// load and give wrong logits. Keys of LlamaConfig / MistralConfig / Qwen2Config / Qwen3Config
// (transformers 4.4x and 5.x) that change the math are here or read elsewhere in this file
// (rope_* above, layer_types, sliding_window); the rest also catch configs of close relatives
// (Gemma, Granite, Cohere, GPT-NeoX, Llama 4, Qwen2.5-1M, quantized checkpoints) relabelled as one
// of our architectures. Keys neither here nor read (dropout, initializer_range, use_cache,
// pretraining_tp, which HF inference ignores...) do not change inference math.
enum class Neutral : std::uint8_t {
  null_only,      // any value is refused
  false_or_zero,  // false / 0
  true_or_one,    // true / 1
  one,            // 1 / 1.0
  zero,           // 0
  silu,           // "silu" (or "swish", the same function in HF)
  head_dim,       // equal to head_dim
};

struct DeniedKey {
  const char* field;
  Neutral neutral;
  const char* what;                         // for the message
  std::optional<ModelArchitecture> exempt;  // where HF does not read the key (or we implement it)
};

constexpr DeniedKey kDeniedKeys[] = {
    // HF Llama/Mistral/Qwen3 put a bias on q/k/v *and* o_proj; no o_proj bias here. Qwen2 always
    // has q/k/v bias (has_qkv_bias), never an o_proj one, and does not read this key.
    {"attention_bias", Neutral::false_or_zero, "a bias on q/k/v/o_proj; no o_proj bias is implemented",
     ModelArchitecture::qwen2},
    {"mlp_bias", Neutral::false_or_zero, "a bias on gate/up/down_proj", std::nullopt},
    {"hidden_act", Neutral::silu, "only the silu MLP activation is implemented", std::nullopt},
    {"hidden_activation", Neutral::silu, "only the silu MLP activation is implemented", std::nullopt},
    {"partial_rotary_factor", Neutral::one, "RoPE on part of each head only", std::nullopt},
    {"rotary_pct", Neutral::one, "RoPE on part of each head only", std::nullopt},
    {"rotary_dim", Neutral::head_dim, "RoPE on part of each head only", std::nullopt},
    {"rope_interleave", Neutral::false_or_zero, "interleaved (GPT-J style) RoPE pairs", std::nullopt},
    // q/k RMSNorm is implemented for Qwen3 (always on there; HF does not read these keys).
    {"qk_layernorm", Neutral::false_or_zero, "q/k normalisation", ModelArchitecture::qwen3},
    {"use_qk_norm", Neutral::false_or_zero, "q/k normalisation", ModelArchitecture::qwen3},
    {"qk_norm", Neutral::false_or_zero, "q/k normalisation", ModelArchitecture::qwen3},
    {"logit_softcapping", Neutral::null_only, "logit soft-capping", std::nullopt},
    {"attn_logit_softcapping", Neutral::null_only, "attention logit soft-capping", std::nullopt},
    {"final_logit_softcapping", Neutral::null_only, "final logit soft-capping", std::nullopt},
    {"query_pre_attn_scalar", Neutral::null_only, "a non-standard attention scale", std::nullopt},
    {"attention_multiplier", Neutral::null_only, "a non-standard attention scale", std::nullopt},
    {"embedding_multiplier", Neutral::one, "scaled embeddings", std::nullopt},
    {"scale_emb", Neutral::one, "scaled embeddings", std::nullopt},
    {"residual_multiplier", Neutral::one, "scaled residual branches", std::nullopt},
    {"logits_scaling", Neutral::one, "scaled logits", std::nullopt},
    {"logit_scale", Neutral::one, "scaled logits", std::nullopt},
    {"use_parallel_residual", Neutral::false_or_zero, "parallel attention and MLP", std::nullopt},
    {"parallel_attn", Neutral::false_or_zero, "parallel attention and MLP", std::nullopt},
    {"use_bidirectional_attention", Neutral::false_or_zero, "non-causal attention", std::nullopt},
    {"is_causal", Neutral::true_or_one, "non-causal attention", std::nullopt},
    {"attention_chunk_size", Neutral::null_only, "chunked attention", std::nullopt},
    {"no_rope_layers", Neutral::null_only, "layers without RoPE", std::nullopt},
    {"attn_temperature_tuning", Neutral::false_or_zero, "attention temperature tuning", std::nullopt},
    {"dual_chunk_attention_config", Neutral::null_only, "dual chunk attention", std::nullopt},
    {"num_experts", Neutral::zero, "mixture of experts", std::nullopt},
    {"num_local_experts", Neutral::zero, "mixture of experts", std::nullopt},
    {"quantization_config", Neutral::null_only, "quantized weights", std::nullopt},
};

bool is_neutral(Neutral neutral, const json& value, const ModelConfig& config) {
  switch (neutral) {
    case Neutral::null_only:
      return false;
    case Neutral::false_or_zero:
      return value.is_boolean() ? !value.get<bool>() : value.is_number() && value.get<double>() == 0.0;
    case Neutral::true_or_one:
      return value.is_boolean() ? value.get<bool>() : value.is_number() && value.get<double>() == 1.0;
    case Neutral::one:
      return value.is_number() && value.get<double>() == 1.0;
    case Neutral::zero:
      return value.is_number() && value.get<double>() == 0.0;
    case Neutral::silu:
      return value.is_string() && (value.get<std::string>() == "silu" || value.get<std::string>() == "swish");
    case Neutral::head_dim:
      return value.is_number_integer() && value.get<std::int64_t>() == config.head_dim;
  }
  return false;
}

void refuse_unimplemented(const FieldReader& reader, const ModelConfig& config) {
  for (const DeniedKey& key : kDeniedKeys) {
    if (key.exempt == config.architecture) continue;
    const json* value = reader.find(key.field);
    if (value == nullptr || is_neutral(key.neutral, *value, config)) continue;
    reader.fail(key.field, short_dump(*value) + " is not implemented (" + key.what + ")");
  }
}

// layer_types (transformers 4.5x+, 5.x): one entry per layer. "full_attention" is what the
// kernels do; "sliding_attention" is exact under the sliding-window handling of
// apply_sliding_window (see the header). Returns whether any layer slides.
bool check_layer_types(const FieldReader& reader, const ModelConfig& config) {
  const json* value = reader.find("layer_types");
  if (value == nullptr) return false;
  if (!value->is_array()) reader.fail("layer_types", "expected a list of strings, got " + short_dump(*value));
  if (value->size() != static_cast<std::size_t>(config.num_hidden_layers)) {
    reader.fail("layer_types", "has " + std::to_string(value->size()) + " entries, num_hidden_layers is " +
                                   std::to_string(config.num_hidden_layers));
  }
  bool sliding = false;
  for (std::size_t i = 0; i < value->size(); ++i) {
    const json& item = (*value)[i];
    if (item.is_string() && item.get<std::string>() == "full_attention") continue;
    if (item.is_string() && item.get<std::string>() == "sliding_attention") {
      sliding = true;
      continue;
    }
    reader.fail("layer_types", "entry " + std::to_string(i) + " " + short_dump(item) +
                                   " is not implemented (implemented: full_attention, sliding_attention)");
  }
  return sliding;
}

// HF's own defaults where config.json leaves max_position_embeddings out.
int default_max_positions(ModelArchitecture architecture) {
  switch (architecture) {
    case ModelArchitecture::llama:
      return 2048;
    case ModelArchitecture::mistral:
      return 4096 * 32;
    case ModelArchitecture::qwen2:
    case ModelArchitecture::qwen3:
      return 32768;
  }
  return 2048;
}

void apply_sliding_window(const FieldReader& reader, ModelConfig& config, bool sliding_layer_types) {
  // Qwen2/Qwen3 carry a sliding_window value that only applies with use_sliding_window. Where a
  // config has no use_sliding_window, a sliding layer in layer_types turns the window on.
  const bool qwen =
      config.architecture == ModelArchitecture::qwen2 || config.architecture == ModelArchitecture::qwen3;
  if (qwen && !reader.bool_or("use_sliding_window", sliding_layer_types)) return;
  const std::optional<int> window = reader.optional_int("sliding_window");
  if (!window) return;
  if (*window <= 0) reader.fail("sliding_window", "must be positive or null, got " + std::to_string(*window));
  if (*window >= config.max_position_embeddings) return;  // never reached: plain causal attention
  spdlog::warn(
      "{}: sliding_window {} < max_position_embeddings {}; sliding-window attention is not implemented, "
      "so the context is limited to {} tokens (exact for every sequence up to the window)",
      reader.source(), *window, config.max_position_embeddings, *window);
  config.sliding_window = window;
  config.max_position_embeddings = *window;
}

void validate_shapes(const FieldReader& reader, const ModelConfig& config) {
  if (config.num_key_value_heads <= 0) {
    reader.fail("num_key_value_heads", "must be positive, got " + std::to_string(config.num_key_value_heads));
  }
  if (config.num_attention_heads % config.num_key_value_heads != 0) {
    reader.fail("num_key_value_heads", "num_attention_heads (" + std::to_string(config.num_attention_heads) +
                                           ") must be a multiple of it (" +
                                           std::to_string(config.num_key_value_heads) + ")");
  }
  if (config.head_dim <= 0 || config.head_dim % 2 != 0) {
    reader.fail("head_dim",
                "must be positive and even (RoPE rotates pairs), got " + std::to_string(config.head_dim));
  }
  if (config.max_position_embeddings <= 0) reader.fail("max_position_embeddings", "must be positive");
  if (!(config.rms_norm_eps > 0.0)) reader.fail("rms_norm_eps", "must be positive");
  if (!(config.rope_theta > 0.0)) reader.fail("rope_theta", "must be positive");
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw SetupError(path.string(), "cannot open");
  std::ostringstream contents;
  contents << in.rdbuf();
  if (in.bad()) throw SetupError(path.string(), "read failed");
  return contents.str();
}

}  // namespace

std::string_view architecture_name(ModelArchitecture architecture) noexcept {
  switch (architecture) {
    case ModelArchitecture::llama:
      return "LlamaForCausalLM";
    case ModelArchitecture::qwen2:
      return "Qwen2ForCausalLM";
    case ModelArchitecture::qwen3:
      return "Qwen3ForCausalLM";
    case ModelArchitecture::mistral:
      return "MistralForCausalLM";
  }
  return "?";
}

ModelConfig parse_model_config(std::string_view config_json, std::string_view generation_config_json,
                               const std::string& source, const std::string& generation_source) {
  const json root = parse_object(config_json, source);
  const FieldReader reader(root, source);
  ModelConfig config;
  config.architecture = parse_architecture(reader, config.architecture_name);

  config.hidden_size = reader.positive_int("hidden_size");
  config.num_hidden_layers = reader.positive_int("num_hidden_layers");
  config.num_attention_heads = reader.positive_int("num_attention_heads");
  config.num_key_value_heads =
      reader.optional_int("num_key_value_heads").value_or(config.num_attention_heads);
  if (const auto head_dim = reader.optional_int("head_dim")) {
    config.head_dim = *head_dim;
  } else {
    if (config.hidden_size % config.num_attention_heads != 0) {
      reader.fail("head_dim", "absent, and hidden_size is not a multiple of num_attention_heads");
    }
    config.head_dim = config.hidden_size / config.num_attention_heads;
  }
  config.intermediate_size = reader.positive_int("intermediate_size");
  config.vocab_size = reader.positive_int("vocab_size");

  parse_rope(reader, config);
  config.rms_norm_eps = reader.number_or("rms_norm_eps", config.rms_norm_eps);
  config.tie_word_embeddings = reader.bool_or("tie_word_embeddings", false);
  config.max_position_embeddings =
      reader.optional_int("max_position_embeddings").value_or(default_max_positions(config.architecture));
  config.torch_dtype = parse_dtype(reader);
  config.attention_bias = reader.bool_or("attention_bias", false);
  validate_shapes(reader, config);
  refuse_unimplemented(reader, config);
  apply_sliding_window(reader, config, check_layer_types(reader, config));

  if (const auto bos = reader.optional_int_list("bos_token_id")) {
    if (bos->size() != 1) reader.fail("bos_token_id", "expected one id");
    config.bos_token_id = (*bos)[0];
  }
  config.eos_token_ids = reader.optional_int_list("eos_token_id").value_or(std::vector<std::int32_t>{});

  if (!generation_config_json.empty()) {
    const json generation = parse_object(generation_config_json, generation_source);
    const FieldReader generation_reader(generation, generation_source);
    if (const auto bos = generation_reader.optional_int_list("bos_token_id")) {
      if (bos->size() != 1) generation_reader.fail("bos_token_id", "expected one id");
      config.bos_token_id = (*bos)[0];
    }
    if (auto eos = generation_reader.optional_int_list("eos_token_id"))
      config.eos_token_ids = std::move(*eos);
  }
  for (const std::int32_t id : config.eos_token_ids) {
    if (id < 0 || id >= config.vocab_size)
      reader.fail("eos_token_id", "id " + std::to_string(id) + " outside the vocabulary");
  }
  if (config.bos_token_id && (*config.bos_token_id < 0 || *config.bos_token_id >= config.vocab_size)) {
    reader.fail("bos_token_id", "id " + std::to_string(*config.bos_token_id) + " outside the vocabulary");
  }

  // attention_bias true is refused above except on Qwen2, where HF ignores it.
  config.has_qkv_bias = config.architecture == ModelArchitecture::qwen2;
  config.has_qk_norm = config.architecture == ModelArchitecture::qwen3;
  return config;
}

ModelConfig load_model_config(const std::filesystem::path& model_dir) {
  const std::filesystem::path config_path = model_dir / "config.json";
  const std::filesystem::path generation_path = model_dir / "generation_config.json";
  if (!std::filesystem::is_regular_file(config_path)) throw SetupError(config_path.string(), "not found");
  const std::string config_json = read_file(config_path);
  std::string generation_json;
  if (std::filesystem::is_regular_file(generation_path)) {
    generation_json = read_file(generation_path);
    if (generation_json.empty()) throw SetupError(generation_path.string(), "empty file");
  }
  return parse_model_config(config_json, generation_json, config_path.string(), generation_path.string());
}

}  // namespace pagedserve
