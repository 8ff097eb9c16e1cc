#include "server/cli.h"

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>

namespace pagedserve {
namespace {

using Problem = std::optional<std::string>;  // why a value was refused

template <class Config>
struct Flag {
  const char* name;        // without the leading "--"
  const char* value_name;  // shown in --help; empty for a boolean switch
  const char* help;
  std::function<Problem(Config&, const std::string&)> set;
  std::function<std::string(const Config&)> get;
};

Problem to_int(const std::string& text, long long min, long long max, long long& out) {
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  if (ec != std::errc() || end != text.data() + text.size()) return "expects an integer, got '" + text + "'";
  if (out < min || out > max) {
    return "must be between " + std::to_string(min) + " and " + std::to_string(max) + ", got " + text;
  }
  return {};
}

Problem set_int(int& field, const std::string& text, long long min, long long max = 1ll << 30) {
  long long v = 0;
  if (Problem p = to_int(text, min, max, v)) return p;
  field = int(v);
  return {};
}

Problem set_float(float& field, const std::string& text, double min, double max) {
  char* end = nullptr;
  double v = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || !std::isfinite(v)) return "expects a number, got '" + text + "'";
  if (v < min || v > max) return "must be between " + std::to_string(min) + " and " + std::to_string(max);
  field = float(v);
  return {};
}

Problem set_bool(bool& field, const std::string& text) {
  if (text == "true" || text == "1" || text == "yes" || text.empty()) {
    field = true;
  } else if (text == "false" || text == "0" || text == "no") {
    field = false;
  } else {
    return "expects true or false, got '" + text + "'";
  }
  return {};
}

Problem set_choice(std::string& field, const std::string& text, std::initializer_list<const char*> choices) {
  std::string all;
  for (const char* c : choices) {
    if (text == c) {
      field = text;
      return {};
    }
    all += std::string(all.empty() ? "" : "|") + c;
  }
  return "must be one of " + all + ", got '" + text + "'";
}

Problem set_seconds(std::chrono::seconds& field, const std::string& text) {
  long long v = 0;
  if (Problem p = to_int(text, 0, 86400, v)) return p;
  field = std::chrono::seconds(v);
  return {};
}

Problem set_bytes(std::size_t& field, const std::string& text) {
  auto v = parse_byte_size(text);
  if (!v || *v == 0) return "expects a size like 4GiB, 512MiB or a byte count, got '" + text + "'";
  field = *v;
  return {};
}

std::string bool_text(bool b) { return b ? "true" : "false"; }

// Flags shared by serve and generate: where the model is and how the engine runs it.
template <class Command>
std::vector<Flag<Command>> engine_flags() {
  using C = Command;
  return {
      {"model", "DIR", "Hugging Face model directory (config.json, tokenizer.json, *.safetensors). Required.",
       [](C& c, const std::string& v) -> Problem {
         if (v.empty()) return "must not be empty";
         c.engine.model_dir = v;
         return {};
       },
       [](const C& c) { return c.engine.model_dir; }},
      {"backend", "cpu|cuda", "Where the model runs. Default cpu.",
       [](C& c, const std::string& v) {
         return set_choice(c.engine.backend, v, {"cpu", "cuda"});
       },
       [](const C& c) { return c.engine.backend; }},
      {"load-format", "auto|dummy",
       "auto: the checkpoint's safetensors; dummy: seeded random weights of the config's shapes. Default "
       "auto.",
       [](C& c, const std::string& v) {
         return set_choice(c.engine.load_format, v, {"auto", "dummy"});
       },
       [](const C& c) { return c.engine.load_format; }},
      {"dummy-seed", "N", "Seed of the dummy weights. Default 0.",
       [](C& c, const std::string& v) -> Problem {
         long long s = 0;
         if (Problem p = to_int(v, 0, 1ll << 62, s)) return p;
         c.engine.dummy_seed = std::uint64_t(s);
         return {};
       },
       [](const C& c) { return std::to_string(c.engine.dummy_seed); }},
      {"threads", "N", "CPU kernel threads; 0 = one per core. Default 0.",
       [](C& c, const std::string& v) { return set_int(c.engine.threads, v, 0, 1024); },
       [](const C& c) { return std::to_string(c.engine.threads); }},
      {"page-size", "N", "Tokens per KV-cache page: 16, 32 or 64. Default 16.",
       [](C& c, const std::string& v) -> Problem {
         if (v != "16" && v != "32" && v != "64") return "must be 16, 32 or 64, got '" + v + "'";
         return set_int(c.engine.page_size, v, 16, 64);
       },
       [](const C& c) { return std::to_string(c.engine.page_size); }},
      {"max-num-seqs", "N", "Sequences running in one step at most. Default 64.",
       [](C& c, const std::string& v) { return set_int(c.engine.max_num_seqs, v, 1, 4096); },
       [](const C& c) { return std::to_string(c.engine.max_num_seqs); }},
      {"max-num-batched-tokens", "N", "Tokens computed in one step at most (prefill chunking). Default 2048.",
       [](C& c, const std::string& v) { return set_int(c.engine.max_num_batched_tokens, v, 16, 1 << 20); },
       [](const C& c) { return std::to_string(c.engine.max_num_batched_tokens); }},
      {"max-model-len", "N", "Context length served (prompt + output); 0 = the model's. Default 0.",
       [](C& c, const std::string& v) { return set_int(c.engine.max_model_len, v, 0, 1 << 24); },
       [](const C& c) { return std::to_string(c.engine.max_model_len); }},
      {"kv-cache-memory", "SIZE",
       "Memory for the KV cache (K and V of all layers), e.g. 2GiB, 512MiB, or auto. Default auto: 1GiB on "
       "the CPU; on CUDA what --gpu-memory-utilization leaves after weights and scratch.",
       [](C& c, const std::string& v) -> Problem {
         if (v == "auto") {
           c.engine.kv_cache_memory_bytes = 0;
           return {};
         }
         return set_bytes(c.engine.kv_cache_memory_bytes, v);
       },
       [](const C& c) {
         return c.engine.kv_cache_memory_bytes == 0 ? std::string("auto")
                                                    : std::to_string(c.engine.kv_cache_memory_bytes);
       }},
      {"gpu-memory-utilization", "F",
       "CUDA: share of the GPU's memory for weights, scratch and KV cache, in (0, 1]. Default 0.9.",
       [](C& c, const std::string& v) -> Problem {
         float f = 0.0f;
         if (Problem p = set_float(f, v, 0.01, 1.0)) return p;
         c.engine.gpu_memory_utilization = f;
         return {};
       },
       [](const C& c) { return std::to_string(c.engine.gpu_memory_utilization); }},
      {"device", "N", "CUDA: which GPU (index). Default 0.",
       [](C& c, const std::string& v) { return set_int(c.engine.device, v, 0, 1023); },
       [](const C& c) { return std::to_string(c.engine.device); }},
      {"kv-cache-dtype", "bf16|f16|f32", "KV-cache element type. Default bf16.",
       [](C& c, const std::string& v) {
         return set_choice(c.engine.kv_cache_dtype, v, {"bf16", "f16", "f32"});
       },
       [](const C& c) { return c.engine.kv_cache_dtype; }},
      {"enforce-eager", "true|false",
       "CUDA: launch every step's kernels one by one instead of replaying captured decode graphs. "
       "Default false.",
       [](C& c, const std::string& v) { return set_bool(c.engine.enforce_eager, v); },
       [](const C& c) { return bool_text(c.engine.enforce_eager); }},
      {"enable-prefix-caching", "true|false", "Reuse KV pages of identical prompt prefixes. Default true.",
       [](C& c, const std::string& v) { return set_bool(c.engine.enable_prefix_caching, v); },
       [](const C& c) { return bool_text(c.engine.enable_prefix_caching); }},
      {"log-level", "LEVEL", "trace, debug, info, warn, error. Default info (serve), warn (generate).",
       [](C& c, const std::string& v) {
         return set_choice(c.log_level, v, {"trace", "debug", "info", "warn", "error", "critical", "off"});
       },
       [](const C& c) { return c.log_level; }},
  };
}

std::vector<Flag<ServeCommand>> serve_flags() {
  using C = ServeCommand;
  std::vector<Flag<C>> flags = engine_flags<C>();
  std::vector<Flag<C>> http = {
      {"config", "FILE", "JSON file with any of these keys (e.g. configs/default.json); flags override it.",
       [](C& c, const std::string& v) -> Problem {
         c.config_file = v;
         return {};
       },
       [](const C& c) { return c.config_file; }},
      {"host", "ADDR", "Address to listen on (0.0.0.0 for all interfaces). Default 127.0.0.1.",
       [](C& c, const std::string& v) -> Problem {
         c.server.host = v;
         return {};
       },
       [](const C& c) { return c.server.host; }},
      {"port", "N", "TCP port; 0 picks a free one (logged). Default 8000.",
       [](C& c, const std::string& v) -> Problem {
         int port = 0;
         if (Problem p = set_int(port, v, 0, 65535)) return p;
         c.server.port = std::uint16_t(port);
         return {};
       },
       [](const C& c) { return std::to_string(c.server.port); }},
      {"served-model-name", "NAME", "Model name in the API; default: the model directory's name.",
       [](C& c, const std::string& v) -> Problem {
         c.server.served_model_name = v;
         return {};
       },
       [](const C& c) { return c.server.served_model_name; }},
      {"chat-template", "FILE",
       "Jinja chat template for /v1/chat/completions, replacing the model's (tokenizer_config.json or "
       "chat_template.jinja). Default: the model's.",
       [](C& c, const std::string& v) -> Problem {
         if (v.empty()) return "must not be empty";
         c.server.chat_template_file = v;
         return {};
       },
       [](const C& c) { return c.server.chat_template_file; }},
      {"api-key", "KEY", "Require 'Authorization: Bearer KEY' on the API (401 otherwise). Default none.",
       [](C& c, const std::string& v) -> Problem {
         c.server.api_key = v;
         return {};
       },
       [](const C& c) { return c.server.api_key.empty() ? std::string() : std::string("<set>"); }},
      {"api-key-for-probes", "true|false", "Also require the key on /health and /metrics. Default false.",
       [](C& c, const std::string& v) { return set_bool(c.server.api_key_for_health_and_metrics, v); },
       [](const C& c) { return bool_text(c.server.api_key_for_health_and_metrics); }},
      {"http-threads", "N", "Threads serving HTTP. Default 4.",
       [](C& c, const std::string& v) { return set_int(c.server.http_threads, v, 1, 256); },
       [](const C& c) { return std::to_string(c.server.http_threads); }},
      {"max-body-bytes", "SIZE", "Largest request body; larger ones get 413. Default 4MiB.",
       [](C& c, const std::string& v) { return set_bytes(c.server.max_body_bytes, v); },
       [](const C& c) { return std::to_string(c.server.max_body_bytes); }},
      {"max-header-bytes", "SIZE", "Largest request header block; larger ones get 431. Default 16KiB.",
       [](C& c, const std::string& v) { return set_bytes(c.server.max_header_bytes, v); },
       [](const C& c) { return std::to_string(c.server.max_header_bytes); }},
      {"idle-timeout", "SECONDS",
       "A connection waiting this long for a request to begin is closed. Default 60.",
       [](C& c, const std::string& v) { return set_seconds(c.server.idle_timeout, v); },
       [](const C& c) { return std::to_string(c.server.idle_timeout.count()); }},
      {"read-timeout", "SECONDS",
       "Reading one request (head and body, from its first byte) may take this long. Default 30.",
       [](C& c, const std::string& v) { return set_seconds(c.server.read_timeout, v); },
       [](const C& c) { return std::to_string(c.server.read_timeout.count()); }},
      {"write-timeout", "SECONDS", "One response write or stream chunk may take this long. Default 30.",
       [](C& c, const std::string& v) { return set_seconds(c.server.write_timeout, v); },
       [](const C& c) { return std::to_string(c.server.write_timeout.count()); }},
      {"shutdown-timeout", "SECONDS",
       "On SIGTERM, in-flight requests get this long before they are aborted. Default 30.",
       [](C& c, const std::string& v) { return set_seconds(c.server.shutdown_timeout, v); },
       [](const C& c) { return std::to_string(c.server.shutdown_timeout.count()); }},
      {"max-concurrent-requests", "N",
       "Completions in flight at most; more get 429. 0 = unlimited. Default 0.",
       [](C& c, const std::string& v) { return set_int(c.server.max_concurrent_requests, v, 0, 1 << 20); },
       [](const C& c) { return std::to_string(c.server.max_concurrent_requests); }},
      {"max-n", "N", "Largest 'n' a request may ask for. Default 16.",
       [](C& c, const std::string& v) { return set_int(c.server.max_n, v, 1, 128); },
       [](const C& c) { return std::to_string(c.server.max_n); }},
      {"max-logprobs", "N", "Largest 'logprobs' a request may ask for. Default 20.",
       [](C& c, const std::string& v) { return set_int(c.server.max_logprobs, v, 0, 100); },
       [](const C& c) { return std::to_string(c.server.max_logprobs); }},
  };
  flags.insert(flags.begin() + 1, http.begin(), http.end());
  return flags;
}

std::vector<Flag<GenerateCommand>> generate_flags() {
  using C = GenerateCommand;
  std::vector<Flag<C>> flags = engine_flags<C>();
  std::vector<Flag<C>> sampling = {
      {"prompt", "TEXT", "The prompt. Required.",
       [](C& c, const std::string& v) -> Problem {
         if (v.empty()) return "must not be empty";
         c.prompt = v;
         return {};
       },
       [](const C& c) { return c.prompt; }},
      {"max-tokens", "N", "Tokens to generate at most. Default 64.",
       [](C& c, const std::string& v) { return set_int(c.max_tokens, v, 1, 1 << 24); },
       [](const C& c) { return std::to_string(c.max_tokens); }},
      {"temperature", "T", "0 = greedy. Default 1.",
       [](C& c, const std::string& v) { return set_float(c.temperature, v, 0, 100); },
       [](const C& c) { return std::to_string(c.temperature); }},
      {"top-p", "P", "Nucleus sampling mass in (0, 1]. Default 1.",
       [](C& c, const std::string& v) -> Problem {
         if (Problem p = set_float(c.top_p, v, 0, 1)) return p;
         if (c.top_p <= 0) return "must be above 0";
         return {};
       },
       [](const C& c) { return std::to_string(c.top_p); }},
      {"top-k", "K", "Keep the K most likely tokens; -1 = off. Default -1.",
       [](C& c, const std::string& v) { return set_int(c.top_k, v, -1, 1 << 24); },
       [](const C& c) { return std::to_string(c.top_k); }},
      {"seed", "S", "Sampling seed (same seed, same text). Default random.",
       [](C& c, const std::string& v) -> Problem {
         long long s = 0;
         if (Problem p = to_int(v, 0, (1ll << 62), s)) return p;
         c.seed = std::uint64_t(s);
         return {};
       },
       [](const C& c) { return c.seed ? std::to_string(*c.seed) : std::string(); }},
      {"ignore-eos", "true|false", "Keep generating past the end-of-sequence token. Default false.",
       [](C& c, const std::string& v) { return set_bool(c.ignore_eos, v); },
       [](const C& c) { return bool_text(c.ignore_eos); }},
  };
  flags.insert(flags.begin() + 1, sampling.begin(), sampling.end());
  return flags;
}

template <class C>
std::string help_for(const char* usage, const std::vector<Flag<C>>& flags) {
  std::ostringstream out;
  out << usage << "\n\nFlags (also accepted as --flag=value; switches may be given alone):\n";
  for (const auto& f : flags) {
    std::string left = std::string("  --") + f.name + " " + f.value_name;
    out << left << std::string(left.size() < 34 ? 34 - left.size() : 1, ' ') << f.help << "\n";
  }
  out << "  --help" << std::string(28, ' ') << "This text.\n";
  return out.str();
}

constexpr const char* kTopUsage =
    "usage: pagedserve serve --model DIR [--config FILE] [flags]   OpenAI-compatible HTTP server\n"
    "       pagedserve generate --model DIR --prompt TEXT [flags]  one completion to stdout, offline\n"
    "       pagedserve <command> --help                            the flags of a command";
constexpr const char* kServeUsage = "usage: pagedserve serve --model DIR [--config FILE] [flags]";
constexpr const char* kGenerateUsage = "usage: pagedserve generate --model DIR --prompt TEXT [flags]";

template <class C>
const Flag<C>* find_flag(const std::vector<Flag<C>>& flags, std::string name) {
  for (char& ch : name) {
    if (ch == '_') ch = '-';
  }
  for (const auto& f : flags) {
    if (name == f.name) return &f;
  }
  return nullptr;
}

template <class C>
bool is_switch(const Flag<C>& f) {
  return std::string(f.value_name) == "true|false";
}

// Applies a JSON config file through the same setters as the flags.
template <class C>
std::optional<CliError> apply_config_file(const std::string& path, const std::vector<Flag<C>>& flags,
                                          C& command) {
  std::ifstream in(path);
  if (!in) return CliError{path + ": cannot open the config file"};
  nlohmann::json config = nlohmann::json::parse(in, nullptr, false);
  if (config.is_discarded() || !config.is_object()) return CliError{path + ": not a JSON object"};
  for (const auto& [key, value] : config.items()) {
    const Flag<C>* flag = find_flag(flags, key);
    if (!flag || std::string(flag->name) == "config") return CliError{path + ": unknown key '" + key + "'"};
    std::string text;
    if (value.is_string()) {
      text = value.template get<std::string>();
    } else if (value.is_boolean()) {
      text = bool_text(value.template get<bool>());
    } else if (value.is_number()) {
      text = value.dump();
    } else if (value.is_null()) {
      continue;
    } else {
      return CliError{path + ": key '" + key + "' must be a string, number or boolean"};
    }
    if (Problem p = flag->set(command, text)) return CliError{path + ": '" + key + "' " + *p};
  }
  return {};
}

template <class C>
CliResult parse_flags(const std::vector<std::string>& args, const std::vector<Flag<C>>& flags,
                      const char* usage, C command) {
  std::vector<std::pair<const Flag<C>*, std::string>> given;
  for (std::size_t i = 2; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--help" || arg == "-h") return HelpText{help_for(usage, flags)};
    if (arg.rfind("--", 0) != 0) return CliError{"unexpected argument '" + arg + "'"};
    std::string name = arg.substr(2);
    std::optional<std::string> value;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    const Flag<C>* flag = find_flag(flags, name);
    if (!flag) return CliError{"unknown flag --" + name};
    if (!value) {
      bool next_is_value = i + 1 < args.size() && args[i + 1].rfind("--", 0) != 0;
      if (is_switch(*flag) && (!next_is_value || (args[i + 1] != "true" && args[i + 1] != "false"))) {
        value = "true";
      } else if (i + 1 < args.size()) {
        value = args[++i];
      } else {
        return CliError{"--" + name + " needs a value (" + flag->value_name + ")"};
      }
    }
    given.emplace_back(flag, *value);
  }
  // The config file first, so that flags on the command line win.
  for (const auto& [flag, value] : given) {
    if (std::string(flag->name) == "config") {
      if (Problem p = flag->set(command, value)) return CliError{"--config " + *p};
      if (auto error = apply_config_file(value, flags, command)) return *error;
    }
  }
  for (const auto& [flag, value] : given) {
    if (std::string(flag->name) == "config") continue;
    if (Problem p = flag->set(command, value)) return CliError{std::string("--") + flag->name + " " + *p};
  }
  if (command.engine.model_dir.empty()) return CliError{"--model DIR is required"};
  return command;
}

}  // namespace

std::optional<std::size_t> parse_byte_size(const std::string& text) {
  std::size_t digits = 0;
  while (digits < text.size() &&
         (std::isdigit(static_cast<unsigned char>(text[digits])) || text[digits] == '.')) {
    ++digits;
  }
  if (digits == 0) return {};
  char* end = nullptr;
  std::string number = text.substr(0, digits);
  double value = std::strtod(number.c_str(), &end);
  if (*end != '\0') return {};
  std::string unit = text.substr(digits);
  double scale = 1;
  if (unit.empty() || unit == "B") {
    scale = 1;
  } else if (unit == "KiB" || unit == "K" || unit == "k") {
    scale = 1024.0;
  } else if (unit == "MiB" || unit == "M") {
    scale = 1024.0 * 1024;
  } else if (unit == "GiB" || unit == "G") {
    scale = 1024.0 * 1024 * 1024;
  } else if (unit == "KB") {
    scale = 1e3;
  } else if (unit == "MB") {
    scale = 1e6;
  } else if (unit == "GB") {
    scale = 1e9;
  } else {
    return {};
  }
  double bytes = value * scale;
  if (!std::isfinite(bytes) || bytes > 1e15) return {};
  return static_cast<std::size_t>(bytes);
}

CliResult parse_command_line(const std::vector<std::string>& args) {
  if (args.size() < 2 || args[1] == "--help" || args[1] == "-h" || args[1] == "help") {
    if (args.size() < 2) return CliError{"a command is required"};
    return HelpText{std::string(kTopUsage) + "\n"};
  }
  if (args[1] == "serve") return parse_flags(args, serve_flags(), kServeUsage, ServeCommand{});
  if (args[1] == "generate") return parse_flags(args, generate_flags(), kGenerateUsage, GenerateCommand{});
  return CliError{"unknown command '" + args[1] + "'"};
}

std::string describe_serve_command(const ServeCommand& command) {
  nlohmann::ordered_json out;
  for (const auto& flag : serve_flags()) out[flag.name] = flag.get(command);
  return out.dump();
}

}  // namespace pagedserve
