// Builds TokenizerData from tokenizer.json (+ tokenizer_config.json). Every error names the file
// and the JSON field that is wrong.
#include <algorithm>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "tokenizer/tokenizer_data.h"
#include "tokenizer/tokenizer_json_reader.h"
#include "tokenizer/unicode_utf8.h"

namespace pagedserve {

namespace {

using nlohmann::json;

struct JsonFile {
  std::string path;
  json root;
};

JsonFile read_json(const std::filesystem::path& path) {
  const std::string text = read_text_file(path);
  JsonFile file{path.string(), {}};
  try {
    file.root = json::parse(text);
  } catch (const json::parse_error& e) {
    throw SetupError(file.path, std::string("invalid JSON: ") + e.what());
  }
  if (!file.root.is_object()) throw SetupError(file.path, "top level is not a JSON object");
  return file;
}

[[noreturn]] void fail(const JsonFile& file, const std::string& field, const std::string& reason) {
  throw SetupError(file.path, field + ": " + reason);
}

std::string type_of(const JsonFile& file, const json& node, const std::string& field) {
  if (!node.is_object() || !node.contains("type") || !node["type"].is_string()) {
    fail(file, field + ".type", "missing or not a string");
  }
  return node["type"].get<std::string>();
}

template <typename T>
T get_or(const json& node, const char* key, T fallback) {
  if (!node.is_object() || !node.contains(key) || node[key].is_null()) return fallback;
  return node[key].get<T>();
}

// A {"String": "..."} or {"Regex": "..."} pattern.
std::shared_ptr<const CompiledRegex> parse_pattern(const JsonFile& file, const json& node,
                                                   const std::string& field) {
  if (node.contains("Regex") && node["Regex"].is_string()) {
    return compile_regex(node["Regex"].get<std::string>(), false, file.path + " " + field);
  }
  if (node.contains("String") && node["String"].is_string()) {
    return compile_regex(node["String"].get<std::string>(), true, file.path + " " + field);
  }
  fail(file, field, "expected {\"String\": ...} or {\"Regex\": ...}");
}

void parse_normalizer(const JsonFile& file, const json& node, const std::string& field,
                      std::vector<NormalizationStep>& steps) {
  if (node.is_null()) return;
  const std::string type = type_of(file, node, field);
  if (type == "Sequence") {
    if (!node.contains("normalizers") || !node["normalizers"].is_array()) {
      fail(file, field + ".normalizers", "missing or not an array");
    }
    for (std::size_t i = 0; i < node["normalizers"].size(); ++i) {
      parse_normalizer(file, node["normalizers"][i], field + ".normalizers[" + std::to_string(i) + "]",
                       steps);
    }
  } else if (type == "NFC") {
    steps.emplace_back(NfcNormalization{});
  } else if (type == "Prepend") {
    steps.emplace_back(PrependNormalization{get_or<std::string>(node, "prepend", "")});
  } else if (type == "Replace") {
    const json& pattern = node.value("pattern", json());
    if (!pattern.is_object() || !pattern.contains("String") || !pattern["String"].is_string()) {
      fail(file, field + ".pattern", "only {\"String\": ...} patterns are supported");
    }
    steps.emplace_back(
        ReplaceNormalization{pattern["String"].get<std::string>(), get_or<std::string>(node, "content", "")});
  } else {
    fail(file, field + ".type", "normalizer \"" + type + "\" is not supported");
  }
}

SplitBehavior parse_behavior(const JsonFile& file, const json& node, const std::string& field) {
  const std::string behavior = get_or<std::string>(node, "behavior", "Isolated");
  if (behavior == "Isolated") return SplitBehavior::kIsolated;
  if (behavior == "Removed") return SplitBehavior::kRemoved;
  if (behavior == "MergedWithPrevious") return SplitBehavior::kMergedWithPrevious;
  if (behavior == "MergedWithNext") return SplitBehavior::kMergedWithNext;
  if (behavior == "Contiguous") return SplitBehavior::kContiguous;
  fail(file, field + ".behavior", "unknown split behavior \"" + behavior + "\"");
}

PrependScheme parse_prepend_scheme(const JsonFile& file, const json& node, const std::string& field) {
  if (node.contains("prepend_scheme") && node["prepend_scheme"].is_string()) {
    const std::string scheme = node["prepend_scheme"].get<std::string>();
    if (scheme == "always") return PrependScheme::kAlways;
    if (scheme == "first") return PrependScheme::kFirst;
    if (scheme == "never") return PrependScheme::kNever;
    fail(file, field + ".prepend_scheme", "unknown scheme \"" + scheme + "\"");
  }
  // Older files say add_prefix_space instead.
  return get_or<bool>(node, "add_prefix_space", true) ? PrependScheme::kAlways : PrependScheme::kNever;
}

void parse_pre_tokenizer(const JsonFile& file, const json& node, const std::string& field,
                         std::vector<PreTokenizerStep>& steps) {
  if (node.is_null()) return;
  const std::string type = type_of(file, node, field);
  if (type == "Sequence") {
    if (!node.contains("pretokenizers") || !node["pretokenizers"].is_array()) {
      fail(file, field + ".pretokenizers", "missing or not an array");
    }
    for (std::size_t i = 0; i < node["pretokenizers"].size(); ++i) {
      parse_pre_tokenizer(file, node["pretokenizers"][i], field + ".pretokenizers[" + std::to_string(i) + "]",
                          steps);
    }
  } else if (type == "Split") {
    if (!node.contains("pattern")) fail(file, field + ".pattern", "missing");
    steps.emplace_back(SplitStep{parse_pattern(file, node["pattern"], field + ".pattern"),
                                 parse_behavior(file, node, field), get_or<bool>(node, "invert", false)});
  } else if (type == "ByteLevel") {
    steps.emplace_back(
        ByteLevelStep{get_or<bool>(node, "add_prefix_space", false), get_or<bool>(node, "use_regex", true)});
  } else if (type == "Metaspace") {
    MetaspaceStep step;
    step.replacement = get_or<std::string>(node, "replacement", step.replacement);
    step.prepend_scheme = parse_prepend_scheme(file, node, field);
    step.split = get_or<bool>(node, "split", true);
    steps.emplace_back(std::move(step));
  } else {
    fail(file, field + ".type", "pre-tokenizer \"" + type + "\" is not supported");
  }
}

// The decoder, reduced to what each token contributes on its own plus a strip at the start.
struct DecoderPlan {
  bool byte_level = false;
  bool byte_fallback = false;
  std::vector<std::pair<std::string, std::string>> replacements;
  int strip_leading_spaces = 0;
};

void parse_decoder(const JsonFile& file, const json& node, const std::string& field, DecoderPlan& plan) {
  if (node.is_null()) return;
  const std::string type = type_of(file, node, field);
  if (type == "Sequence") {
    if (!node.contains("decoders") || !node["decoders"].is_array()) {
      fail(file, field + ".decoders", "missing or not an array");
    }
    for (std::size_t i = 0; i < node["decoders"].size(); ++i) {
      parse_decoder(file, node["decoders"][i], field + ".decoders[" + std::to_string(i) + "]", plan);
    }
  } else if (type == "ByteLevel") {
    plan.byte_level = true;
  } else if (type == "ByteFallback") {
    plan.byte_fallback = true;
  } else if (type == "Fuse") {
    // Tokens are always fused.
  } else if (type == "Replace") {
    const json& pattern = node.value("pattern", json());
    if (!pattern.is_object() || !pattern.contains("String") || !pattern["String"].is_string()) {
      fail(file, field + ".pattern", "only {\"String\": ...} patterns are supported");
    }
    plan.replacements.emplace_back(pattern["String"].get<std::string>(),
                                   get_or<std::string>(node, "content", ""));
  } else if (type == "Strip") {
    if (get_or<std::string>(node, "content", " ") != " " || get_or<int>(node, "stop", 0) != 0) {
      fail(file, field, "only Strip of leading spaces is supported");
    }
    plan.strip_leading_spaces = get_or<int>(node, "start", 0);
  } else if (type == "Metaspace") {
    plan.replacements.emplace_back(get_or<std::string>(node, "replacement", "\xE2\x96\x81"), " ");
    if (parse_prepend_scheme(file, node, field) != PrependScheme::kNever) plan.strip_leading_spaces = 1;
  } else {
    fail(file, field + ".type", "decoder \"" + type + "\" is not supported");
  }
}

std::unique_ptr<BpeModel> parse_model(const JsonFile& file, const json& node,
                                      TokenizerJsonDocument& document) {
  const std::string type = type_of(file, node, "model");
  if (type != "BPE") fail(file, "model.type", "\"" + type + "\" is not supported (only BPE)");
  if (!node.contains("vocab") || !node["vocab"].is_object())
    fail(file, "model.vocab", "missing or not an object");
  if (node.contains("merges") && !node["merges"].is_null() && !node["merges"].is_array()) {
    fail(file, "model.merges", "not an array");
  }
  if (get_or<std::string>(node, "continuing_subword_prefix", "") != "" ||
      get_or<std::string>(node, "end_of_word_suffix", "") != "") {
    fail(file, "model.continuing_subword_prefix", "subword prefixes/suffixes are not supported");
  }

  BpeModelOptions options;
  options.byte_fallback = get_or<bool>(node, "byte_fallback", false);
  options.ignore_merges = get_or<bool>(node, "ignore_merges", false);
  options.fuse_unknown = get_or<bool>(node, "fuse_unk", false);
  if (node.contains("unk_token") && node["unk_token"].is_string()) {
    options.unknown_token = node["unk_token"].get<std::string>();
  }
  auto model =
      std::make_unique<BpeModel>(std::move(document.vocab), document.merges, std::move(options), file.path);
  document.merges = {};
  return model;
}

AddedTokens parse_added_tokens(const JsonFile& file, const json& node) {
  std::vector<AddedToken> tokens;
  if (node.is_null()) return AddedTokens(std::move(tokens));
  if (!node.is_array()) fail(file, "added_tokens", "not an array");
  for (std::size_t i = 0; i < node.size(); ++i) {
    const json& entry = node[i];
    const std::string field = "added_tokens[" + std::to_string(i) + "]";
    if (!entry.is_object() || !entry.contains("id") || !entry["id"].is_number_integer() ||
        !entry.contains("content") || !entry["content"].is_string()) {
      fail(file, field, "needs an integer id and a string content");
    }
    AddedToken token;
    token.id = entry["id"].get<std::int32_t>();
    token.content = entry["content"].get<std::string>();
    token.special = get_or<bool>(entry, "special", false);
    token.lstrip = get_or<bool>(entry, "lstrip", false);
    token.rstrip = get_or<bool>(entry, "rstrip", false);
    if (token.id < 0) fail(file, field + ".id", "negative");
    tokens.push_back(std::move(token));
  }
  return AddedTokens(std::move(tokens));
}

std::optional<std::int32_t> lookup(const TokenizerData& data, std::string_view token) {
  if (const auto id = data.added_tokens.find_by_content(token)) return id;
  return data.model->token_to_id(token);
}

// tokenizer_config.json writes special tokens as a string or as {"content": ...}.
std::optional<std::string> config_token(const JsonFile& file, const char* key) {
  if (!file.root.contains(key) || file.root[key].is_null()) return std::nullopt;
  const json& value = file.root[key];
  if (value.is_string()) return value.get<std::string>();
  if (value.is_object() && value.contains("content") && value["content"].is_string()) {
    return value["content"].get<std::string>();
  }
  fail(file, key, "expected a string or {\"content\": ...}");
}

std::optional<std::int32_t> resolve(const JsonFile& file, const TokenizerData& data, const char* key) {
  const auto token = config_token(file, key);
  if (!token) return std::nullopt;
  const auto id = lookup(data, *token);
  if (!id) fail(file, key, "\"" + *token + "\" is not a token of the tokenizer");
  return id;
}

// TemplateProcessing's "single" template: special tokens before and after sequence A.
bool parse_template(const JsonFile& file, const json& node, TokenizerData& data) {
  if (node.is_null() || !node.is_object()) return false;
  const std::string type = type_of(file, node, "post_processor");
  if (type == "Sequence" && node.contains("processors") && node["processors"].is_array()) {
    for (const json& inner : node["processors"]) {
      if (parse_template(file, inner, data)) return true;
    }
    return false;
  }
  if (type != "TemplateProcessing") return false;
  if (!node.contains("single") || !node["single"].is_array()) {
    fail(file, "post_processor.single", "missing or not an array");
  }
  bool after_sequence = false;
  for (const json& piece : node["single"]) {
    if (piece.contains("Sequence")) {
      after_sequence = true;
    } else if (piece.contains("SpecialToken")) {
      const std::string name = piece["SpecialToken"].value("id", "");
      const json& specials = node.value("special_tokens", json::object());
      std::vector<std::int32_t> ids;
      if (specials.contains(name) && specials[name].contains("ids")) {
        ids = specials[name]["ids"].get<std::vector<std::int32_t>>();
      } else if (const auto id = lookup(data, name)) {
        ids.push_back(*id);
      } else {
        fail(file, "post_processor.single", "special token \"" + name + "\" is unknown");
      }
      auto& target = after_sequence ? data.suffix_ids : data.prefix_ids;
      target.insert(target.end(), ids.begin(), ids.end());
    }
  }
  return true;
}

void build_token_bytes(const DecoderPlan& plan, TokenizerData& data) {
  const ByteLevelAlphabet& alphabet = ByteLevelAlphabet::instance();
  data.token_bytes.assign(static_cast<std::size_t>(data.vocab_size), std::string());
  data.special.assign(static_cast<std::size_t>(data.vocab_size), 0);
  for (std::int32_t id = 0; id < data.model->id_limit(); ++id) {
    const std::string* token = data.model->id_to_token(id);
    if (token == nullptr) continue;
    std::string& bytes = data.token_bytes[static_cast<std::size_t>(id)];
    if (plan.byte_fallback) {
      if (const int byte = data.model->fallback_byte(id); byte >= 0) {
        bytes.push_back(static_cast<char>(byte));
        continue;
      }
    }
    std::string text = *token;
    for (const auto& [from, to] : plan.replacements) {
      std::string replaced;
      std::size_t pos = 0;
      for (std::size_t hit; !from.empty() && (hit = text.find(from, pos)) != std::string::npos;) {
        replaced.append(text, pos, hit - pos);
        replaced.append(to);
        pos = hit + from.size();
      }
      replaced.append(text, pos, std::string::npos);
      text = std::move(replaced);
    }
    if (plan.byte_level) {
      alphabet.decode_all(text, bytes);
    } else {
      bytes = std::move(text);
    }
  }
  // Added tokens decode to their content as written.
  for (const AddedToken& token : data.added_tokens.tokens()) {
    data.token_bytes[static_cast<std::size_t>(token.id)] = token.content;
    data.special[static_cast<std::size_t>(token.id)] = token.special ? 1 : 0;
  }
}

}  // namespace

namespace {

std::shared_ptr<const TokenizerData> build_tokenizer_data(const std::filesystem::path& tokenizer_json,
                                                          const std::filesystem::path& config_path) {
  TokenizerJsonDocument document = read_tokenizer_json(tokenizer_json);
  const JsonFile file{tokenizer_json.string(), std::move(document.root)};
  const json& root = file.root;
  auto data = std::make_shared<TokenizerData>();

  if (!root.contains("model")) fail(file, "model", "missing");
  data->model = parse_model(file, root["model"], document);
  data->added_tokens = parse_added_tokens(file, root.value("added_tokens", json()));

  std::vector<NormalizationStep> normalization;
  parse_normalizer(file, root.value("normalizer", json()), "normalizer", normalization);
  data->normalizer = Normalizer(std::move(normalization));
  std::vector<PreTokenizerStep> pre_tokenization;
  parse_pre_tokenizer(file, root.value("pre_tokenizer", json()), "pre_tokenizer", pre_tokenization);
  data->pre_tokenizer = PreTokenizer(std::move(pre_tokenization));
  DecoderPlan plan;
  parse_decoder(file, root.value("decoder", json()), "decoder", plan);
  data->strip_leading_spaces = plan.strip_leading_spaces;

  data->vocab_size = data->model->id_limit();
  for (const AddedToken& token : data->added_tokens.tokens()) {
    data->vocab_size = std::max(data->vocab_size, token.id + 1);
  }
  build_token_bytes(plan, *data);

  // Which specials surround an encoded text: tokenizer_config.json's add_bos_token /
  // add_eos_token when it says, else the post-processor's template, else bos when there is one.
  const bool has_template = parse_template(file, root.value("post_processor", json()), *data);
  if (!config_path.empty() && std::filesystem::exists(config_path)) {
    const JsonFile config = read_json(config_path);
    data->bos_id = resolve(config, *data, "bos_token");
    data->eos_id = resolve(config, *data, "eos_token");
    const json& c = config.root;
    const bool says_bos = c.contains("add_bos_token") && c["add_bos_token"].is_boolean();
    const bool says_eos = c.contains("add_eos_token") && c["add_eos_token"].is_boolean();
    if (says_bos || (!has_template && data->bos_id)) {
      data->prefix_ids.clear();
      if (data->bos_id && (!says_bos || c["add_bos_token"].get<bool>()))
        data->prefix_ids.push_back(*data->bos_id);
    }
    if (says_eos) {
      data->suffix_ids.clear();
      if (data->eos_id && c["add_eos_token"].get<bool>()) data->suffix_ids.push_back(*data->eos_id);
    }
  }
  return data;
}

}  // namespace

std::shared_ptr<const TokenizerData> load_tokenizer_data(const std::filesystem::path& tokenizer_json,
                                                         const std::filesystem::path& config_path) {
  try {
    return build_tokenizer_data(tokenizer_json, config_path);
  } catch (const nlohmann::json::exception& e) {
    // A field of the wrong JSON type somewhere the checks above do not look.
    throw SetupError(tokenizer_json.string() + " (or " + config_path.filename().string() + ")",
                     std::string("unexpected JSON: ") + e.what());
  }
}

}  // namespace pagedserve
