// make-tiny-model: writes a complete Hugging Face model directory with seeded random weights and a
// real tokenizer, small enough for CI (the embedding is most of it):
//   config.json, generation_config.json, model.safetensors (bf16), tokenizer.json,
//   tokenizer_config.json
//
//   make-tiny-model --arch qwen3|llama --tokenizer-dir DIR --out DIR [--seed N] [--layers N]
//                   [--hidden N] [--heads N] [--kv-heads N] [--head-dim N] [--intermediate N]
//
// vocab_size is read from the tokenizer (largest id in the vocabulary or the added tokens, + 1).
// The same arguments and tokenizer give the same bytes: every tensor draws from its own generator
// seeded from (seed, tensor name). The directory is assembled under <out>.tmp and renamed.
//
// Weight scales are chosen so the model is not degenerate: with tied embeddings and weak layers
// the nearest embedding is the input token itself and greedy decoding just echoes it. Linear
// layers use std 2/sqrt(fan_in) so the layers dominate the residual stream; embeddings use std
// 0.5 so logits spread with std ~4 (a peaked, context-dependent next-token distribution); norm
// weights are 1 + N(0, 0.05).
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/half.h"
#include "core/tensor_view.h"
#include "model/model_config.h"
#include "model/safetensors_writer.h"

namespace pagedserve {
namespace {

namespace fs = std::filesystem;
using nlohmann::ordered_json;

struct Options {
  std::string arch;
  fs::path tokenizer_dir;
  fs::path out;
  std::uint64_t seed = 0;
  int layers = -1;
  int hidden = 64;
  int heads = 4;
  int kv_heads = 2;
  int head_dim = 64;
  int intermediate = 128;
};

// splitmix64: tiny, well mixed, and fully specified here, so the weights never depend on a
// standard library's distribution code.
class WeightRandom {
 public:
  explicit WeightRandom(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next() {
    std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  double uniform_open() { return (static_cast<double>(next() >> 11) + 0.5) * 0x1.0p-53; }  // (0, 1)
  double normal() {  // Box-Muller, one value per pair of uniforms
    const double radius = std::sqrt(-2.0 * std::log(uniform_open()));
    return radius * std::cos(6.283185307179586 * uniform_open());
  }

 private:
  std::uint64_t state_;
};

std::uint64_t name_hash(const std::string& name) {  // FNV-1a
  std::uint64_t hash = 0xcbf29ce484222325ull;
  for (const unsigned char c : name) hash = (hash ^ c) * 0x100000001b3ull;
  return hash;
}

// Owns the bf16 data of every tensor until the file is written.
class TensorSet {
 public:
  TensorSet(std::uint64_t seed) : seed_(seed) {}

  void normal(const std::string& name, std::int64_t rows, std::int64_t cols, double mean, double std) {
    std::vector<bf16>& data = storage_.emplace_back(static_cast<std::size_t>(rows * cols));
    WeightRandom random(seed_ ^ name_hash(name));
    for (bf16& value : data) value = to_bf16(static_cast<float>(mean + std * random.normal()));
    tensors_.push_back({name, rows == 1 ? TensorView(data.data(), DType::bf16, {cols})
                                        : TensorView(data.data(), DType::bf16, {rows, cols})});
  }
  void linear(const std::string& name, int out_features, int in_features) {
    normal(name, out_features, in_features, 0.0, 2.0 / std::sqrt(static_cast<double>(in_features)));
  }
  void norm(const std::string& name, int size) { normal(name, 1, size, 1.0, 0.05); }

  const std::vector<NamedTensor>& tensors() const { return tensors_; }

 private:
  std::uint64_t seed_;
  std::vector<std::vector<bf16>> storage_;
  std::vector<NamedTensor> tensors_;
};

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw SetupError(path.string(), "cannot open");
  std::ostringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

void write_file(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  if (!out) throw SetupError(path.string(), "write failed");
}

int tokenizer_vocab_size(const fs::path& tokenizer_json) {
  const nlohmann::json tokenizer = nlohmann::json::parse(read_file(tokenizer_json), nullptr, false);
  if (tokenizer.is_discarded()) throw SetupError(tokenizer_json.string(), "not valid JSON");
  std::int64_t max_id = -1;
  const auto model = tokenizer.find("model");
  if (model == tokenizer.end() || !model->contains("vocab") || !(*model)["vocab"].is_object()) {
    throw SetupError(tokenizer_json.string(), "no model.vocab object");
  }
  for (const auto& item : (*model)["vocab"].items())
    max_id = std::max<std::int64_t>(max_id, item.value().get<std::int64_t>());
  if (const auto added = tokenizer.find("added_tokens"); added != tokenizer.end() && added->is_array()) {
    for (const auto& token : *added)
      max_id = std::max<std::int64_t>(max_id, token.at("id").get<std::int64_t>());
  }
  if (max_id < 0) throw SetupError(tokenizer_json.string(), "empty vocabulary");
  return static_cast<int>(max_id + 1);
}

struct Files {
  ordered_json config;
  ordered_json generation_config;
};

Files describe(const Options& options, int vocab_size) {
  Files files;
  ordered_json& c = files.config;
  const bool qwen3 = options.arch == "qwen3";
  c["architectures"] = {qwen3 ? "Qwen3ForCausalLM" : "LlamaForCausalLM"};
  c["model_type"] = qwen3 ? "qwen3" : "llama";
  c["attention_bias"] = false;
  c["attention_dropout"] = 0.0;
  c["bos_token_id"] = qwen3 ? 151643 : 128000;
  c["eos_token_id"] = qwen3 ? 151645 : 128001;
  c["head_dim"] = options.head_dim;
  c["hidden_act"] = "silu";
  c["hidden_size"] = options.hidden;
  c["initializer_range"] = 0.02;
  c["intermediate_size"] = options.intermediate;
  c["max_position_embeddings"] = 8192;
  if (!qwen3) c["mlp_bias"] = false;
  c["num_attention_heads"] = options.heads;
  c["num_hidden_layers"] = options.layers;
  c["num_key_value_heads"] = options.kv_heads;
  c["rms_norm_eps"] = 1e-6;
  if (qwen3) {
    c["rope_scaling"] = nullptr;
    c["rope_theta"] = 1000000.0;
    c["sliding_window"] = nullptr;
    c["use_sliding_window"] = false;
  } else {
    c["rope_scaling"] = {{"factor", 32.0},
                         {"high_freq_factor", 4.0},
                         {"low_freq_factor", 1.0},
                         {"original_max_position_embeddings", 8192},
                         {"rope_type", "llama3"}};
    c["rope_theta"] = 500000.0;
  }
  c["tie_word_embeddings"] = true;
  c["torch_dtype"] = "bfloat16";
  c["use_cache"] = true;
  c["vocab_size"] = vocab_size;

  ordered_json& g = files.generation_config;
  g["bos_token_id"] = c["bos_token_id"];
  g["eos_token_id"] = qwen3 ? ordered_json{151645, 151643} : ordered_json{128001, 128008, 128009};
  if (qwen3) g["pad_token_id"] = 151643;
  return files;
}

TensorSet make_weights(const ModelConfig& config, std::uint64_t seed) {
  TensorSet set(seed);
  set.normal("model.embed_tokens.weight", config.vocab_size, config.hidden_size, 0.0, 0.5);
  for (int l = 0; l < config.num_hidden_layers; ++l) {
    const std::string prefix = "model.layers." + std::to_string(l) + ".";
    set.norm(prefix + "input_layernorm.weight", config.hidden_size);
    set.linear(prefix + "self_attn.q_proj.weight", config.q_size(), config.hidden_size);
    set.linear(prefix + "self_attn.k_proj.weight", config.kv_size(), config.hidden_size);
    set.linear(prefix + "self_attn.v_proj.weight", config.kv_size(), config.hidden_size);
    if (config.has_qk_norm) {
      set.norm(prefix + "self_attn.q_norm.weight", config.head_dim);
      set.norm(prefix + "self_attn.k_norm.weight", config.head_dim);
    }
    set.linear(prefix + "self_attn.o_proj.weight", config.hidden_size, config.q_size());
    set.norm(prefix + "post_attention_layernorm.weight", config.hidden_size);
    set.linear(prefix + "mlp.gate_proj.weight", config.intermediate_size, config.hidden_size);
    set.linear(prefix + "mlp.up_proj.weight", config.intermediate_size, config.hidden_size);
    set.linear(prefix + "mlp.down_proj.weight", config.hidden_size, config.intermediate_size);
  }
  set.norm("model.norm.weight", config.hidden_size);
  return set;
}

void make_model(const Options& options) {
  const fs::path tokenizer_json = options.tokenizer_dir / "tokenizer.json";
  const fs::path tokenizer_config = options.tokenizer_dir / "tokenizer_config.json";
  const int vocab_size = tokenizer_vocab_size(tokenizer_json);
  const Files files = describe(options, vocab_size);
  const ModelConfig config = parse_model_config(files.config.dump(), files.generation_config.dump());

  const fs::path staging = options.out.string() + ".tmp";
  fs::remove_all(staging);
  fs::create_directories(staging);
  write_file(staging / "config.json", files.config.dump(2) + "\n");
  write_file(staging / "generation_config.json", files.generation_config.dump(2) + "\n");
  fs::copy_file(tokenizer_json, staging / "tokenizer.json");
  fs::copy_file(tokenizer_config, staging / "tokenizer_config.json");
  const TensorSet weights = make_weights(config, options.seed);
  write_safetensors(staging / "model.safetensors", weights.tensors(),
                    {{"generator", "pagedserve make-tiny-model"}, {"seed", std::to_string(options.seed)}});
  fs::remove_all(options.out);
  fs::rename(staging, options.out);
  std::cout << "make-tiny-model: " << options.out.string() << " (" << config.architecture_name << ", vocab "
            << vocab_size << ", " << config.num_hidden_layers << " layers, "
            << fs::file_size(options.out / "model.safetensors") << " bytes of weights)\n";
}

int parse_int(const std::string& flag, const std::string& value) {
  std::size_t used = 0;
  const long parsed = std::stol(value, &used);
  if (used != value.size() || parsed <= 0 || parsed > (1 << 24))
    throw SetupError(flag, "expected a positive integer");
  return static_cast<int>(parsed);
}

Options parse_options(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) throw SetupError(flag, "missing value");
    const std::string value = argv[++i];
    if (flag == "--arch") {
      options.arch = value;
    } else if (flag == "--tokenizer-dir") {
      options.tokenizer_dir = value;
    } else if (flag == "--out") {
      options.out = value;
    } else if (flag == "--seed") {
      options.seed = std::stoull(value);
    } else if (flag == "--layers") {
      options.layers = parse_int(flag, value);
    } else if (flag == "--hidden") {
      options.hidden = parse_int(flag, value);
    } else if (flag == "--heads") {
      options.heads = parse_int(flag, value);
    } else if (flag == "--kv-heads") {
      options.kv_heads = parse_int(flag, value);
    } else if (flag == "--head-dim") {
      options.head_dim = parse_int(flag, value);
    } else if (flag == "--intermediate") {
      options.intermediate = parse_int(flag, value);
    } else {
      throw SetupError(flag, "unknown option");
    }
  }
  if (options.arch != "qwen3" && options.arch != "llama")
    throw SetupError("--arch", "expected qwen3 or llama");
  if (options.tokenizer_dir.empty()) throw SetupError("--tokenizer-dir", "required");
  if (options.out.empty()) throw SetupError("--out", "required");
  if (options.layers < 0) options.layers = options.arch == "qwen3" ? 4 : 2;
  return options;
}

}  // namespace
}  // namespace pagedserve

int main(int argc, char** argv) {
  try {
    pagedserve::make_model(pagedserve::parse_options(argc, argv));
    return 0;
  } catch (const std::exception& error) {
    std::cerr << "make-tiny-model: " << error.what() << "\n";
    return 1;
  }
}
