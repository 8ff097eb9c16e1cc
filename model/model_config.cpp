#include "model/model_config.h"

#include <spdlog/spdlog.h>

#include <cmath>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"

namespace pagedserve {
namespace {

using nlohmann::json;

// Reads fields of one JSON object and names `source` and the field in every error.
class FieldReader {
 public:
  FieldReader(const json& object, const std::string& source) : object_(object), source_(source) {}

  const json* find(const std::string& field) const {
    auto it = object_.find(field);
    if (it == object_.end() || it->is_null()) return nullptr;
    return &*it;
  }

  [[noreturn]] void fail(const std::string& field, const std::string& reason) const {
    throw SetupError(source_ + ": field '" + field + "'", reason);
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
};

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

RopeScaling parse_rope_scaling(const FieldReader& reader) {
  RopeScaling scaling;
  const json* value = reader.find("rope_scaling");
  if (value == nullptr) return scaling;
  if (!value->is_object()) reader.fail("rope_scaling", "expected an object or null, got " + value->dump());
  const std::string source = reader.source() + ": rope_scaling";
  FieldReader inner(*value, source);
  std::string type;
  for (const char* key : {"rope_type", "type"}) {
    if (const json* t = inner.find(key)) {
      if (!t->is_string()) inner.fail(key, "expected a string, got " + t->dump());
      type = t->get<std::string>();
      break;
    }
  }
  if (type.empty()) reader.fail("rope_scaling", "has no 'rope_type' (or 'type')");
  if (type == "default") return scaling;
  if (type != "llama3") {
    reader.fail("rope_scaling", "unsupported rope_scaling type '" + type + "' (supported: llama3, default)");
  }
  scaling.type = RopeScaling::Type::llama3;
  scaling.factor = inner.number_or("factor", 0.0);
  if (!(scaling.factor > 0.0)) inner.fail("factor", "missing or not positive");
  scaling.low_freq_factor = inner.number_or("low_freq_factor", scaling.low_freq_factor);
  scaling.high_freq_factor = inner.number_or("high_freq_factor", scaling.high_freq_factor);
  if (!(scaling.high_freq_factor > scaling.low_freq_factor) || !(scaling.low_freq_factor > 0.0)) {
    inner.fail("high_freq_factor", "llama3 scaling needs 0 < low_freq_factor < high_freq_factor");
  }
  scaling.original_max_position_embeddings = inner.positive_int("original_max_position_embeddings");
  return scaling;
}

DType parse_dtype(const FieldReader& reader) {
  for (const char* key : {"torch_dtype", "dtype"}) {
    const json* value = reader.find(key);
    if (value == nullptr) continue;
    if (!value->is_string()) reader.fail(key, "expected a string, got " + value->dump());
    const std::string name = value->get<std::string>();
    if (name == "bfloat16") return DType::bf16;
    if (name == "float16" || name == "half") return DType::f16;
    if (name == "float32" || name == "float") return DType::f32;
    reader.fail(key, "unsupported dtype '" + name + "' (supported: bfloat16, float16, float32)");
  }
  return DType::bf16;
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

void apply_sliding_window(const FieldReader& reader, ModelConfig& config) {
  // Qwen2/Qwen3 carry a sliding_window value that only applies with use_sliding_window.
  const bool qwen =
      config.architecture == ModelArchitecture::qwen2 || config.architecture == ModelArchitecture::qwen3;
  if (qwen && !reader.bool_or("use_sliding_window", false)) return;
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

  config.rope_theta = reader.number_or("rope_theta", config.rope_theta);
  config.rope_scaling = parse_rope_scaling(reader);
  config.rms_norm_eps = reader.number_or("rms_norm_eps", config.rms_norm_eps);
  config.tie_word_embeddings = reader.bool_or("tie_word_embeddings", false);
  config.max_position_embeddings =
      reader.optional_int("max_position_embeddings").value_or(default_max_positions(config.architecture));
  config.torch_dtype = parse_dtype(reader);
  config.attention_bias = reader.bool_or("attention_bias", false);
  validate_shapes(reader, config);
  apply_sliding_window(reader, config);

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

  config.has_qkv_bias = config.architecture == ModelArchitecture::qwen2 || config.attention_bias;
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
