#include "bench/serve/serve_options.h"

#include <cmath>
#include <cstdlib>
#include <limits>
#include <stdexcept>

namespace pagedserve::bench {
namespace {

int to_int(const std::string& flag, const std::string& v, int min) {
  size_t used = 0;
  long long n = 0;
  try {
    n = std::stoll(v, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != v.size() || v.empty() || n < min || n > std::numeric_limits<int>::max())
    throw std::invalid_argument(flag + " takes an integer >= " + std::to_string(min) + ", got '" + v + "'");
  return int(n);
}

double to_double(const std::string& flag, const std::string& v) {
  if (v == "inf" || v == "+inf" || v == "Inf") return std::numeric_limits<double>::infinity();
  size_t used = 0;
  double d = 0;
  try {
    d = std::stod(v, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != v.size() || v.empty() || !std::isfinite(d))
    throw std::invalid_argument(flag + " takes a number, got '" + v + "'");
  return d;
}

// http://host[:port][/prefix]; https would need TLS, which this client does not speak.
void read_base_url(const std::string& url, ServeOptions& o) {
  const std::string scheme = "http://";
  if (url.rfind(scheme, 0) != 0)
    throw std::invalid_argument("--base-url must start with http:// (no TLS), got '" + url + "'");
  std::string rest = url.substr(scheme.size());
  const size_t slash = rest.find('/');
  o.path_prefix = slash == std::string::npos ? "" : rest.substr(slash);
  while (!o.path_prefix.empty() && o.path_prefix.back() == '/') o.path_prefix.pop_back();
  rest = rest.substr(0, slash);
  const size_t colon = rest.rfind(':');
  if (colon != std::string::npos && rest.find(']', colon) == std::string::npos) {
    o.port = to_int("--base-url port", rest.substr(colon + 1), 1);
    rest = rest.substr(0, colon);
  } else {
    o.port = 80;
  }
  if (rest.size() >= 2 && rest.front() == '[' && rest.back() == ']') rest = rest.substr(1, rest.size() - 2);
  if (rest.empty()) throw std::invalid_argument("--base-url has no host: '" + url + "'");
  o.host = rest;
}

void read_token_range(const std::string& v, ServeOptions& o) {
  const size_t colon = v.find(':');
  if (colon == std::string::npos)
    throw std::invalid_argument("--token-id-range takes LOW:HIGH, got '" + v + "'");
  o.token_id_low = to_int("--token-id-range", v.substr(0, colon), 0);
  o.token_id_high = to_int("--token-id-range", v.substr(colon + 1), o.token_id_low + 1);
}

}  // namespace

std::string serve_usage() {
  return R"(bench_serve: a load generator for OpenAI-compatible /v1/completions servers (after vllm bench serve).
Every request streams (stream_options.include_usage); per request it measures TTFT, inter-token
latency, TPOT and end-to-end latency, then prints a summary and optionally writes it as JSON.

usage: bench_serve [flags]
  --host HOST               server host (default 127.0.0.1)
  --port PORT               server port (default 8000)
  --base-url URL            http://host:port[/prefix] instead of --host/--port
  --endpoint PATH           completions route (default /v1/completions)
  --model NAME              model field (default: the first of GET /v1/models)
  --num-prompts N           requests to send (default 1000)
  --input-len N             random prompts: N token ids each, sent as a token-id list (default 1024)
  --output-len N            max_tokens of every request (default 128)
  --token-id-range LO:HI    random ids are drawn from [LO, HI) (default 1000:30000)
  --prompt-file FILE        one prompt per line (text), cycled, instead of random ids
  --max-concurrency N       at most N requests in flight (default: no limit)
  --request-rate R          Poisson arrivals at R requests/s; inf = all at once (default inf)
  --ignore-eos              send ignore_eos: true (vLLM-style servers) so every request makes
                            --output-len tokens
  --temperature T           sampling temperature (default 0)
  --seed N                  seeds prompts and arrival times (default 0)
  --api-key KEY             Authorization: Bearer KEY (default $OPENAI_API_KEY)
  --result-file FILE        write the summary and per-request figures as JSON
  --scrape-metrics          read the server's /metrics before and after, and print the p50 of its
                            time_to_first_token / time_per_output_token histograms over the run
  --no-progress             no progress bar on stderr
  --help                    this text
)";
}

ParsedOptions parse_serve_options(const std::vector<std::string>& args) {
  ParsedOptions parsed;
  ServeOptions& o = parsed.options;
  if (const char* key = std::getenv("OPENAI_API_KEY")) o.api_key = key;
  try {
    for (size_t i = 0; i < args.size(); ++i) {
      std::string flag = args[i];
      std::string value;
      bool has_value = false;
      if (const size_t eq = flag.find('='); flag.rfind("--", 0) == 0 && eq != std::string::npos) {
        value = flag.substr(eq + 1);
        flag = flag.substr(0, eq);
        has_value = true;
      }
      auto next = [&]() -> std::string {
        if (has_value) return value;
        if (i + 1 >= args.size()) throw std::invalid_argument(flag + " needs a value");
        return args[++i];
      };
      auto no_value = [&] {
        if (has_value) throw std::invalid_argument(flag + " takes no value");
      };
      if (flag == "--help" || flag == "-h") {
        parsed.help = true;
      } else if (flag == "--host") {
        o.host = next();
      } else if (flag == "--port") {
        o.port = to_int(flag, next(), 1);
      } else if (flag == "--base-url") {
        read_base_url(next(), o);
      } else if (flag == "--endpoint") {
        o.endpoint = next();
        if (o.endpoint.empty() || o.endpoint.front() != '/') o.endpoint = "/" + o.endpoint;
      } else if (flag == "--model") {
        o.model = next();
      } else if (flag == "--num-prompts") {
        o.num_prompts = to_int(flag, next(), 1);
      } else if (flag == "--input-len") {
        o.input_len = to_int(flag, next(), 1);
      } else if (flag == "--output-len") {
        o.output_len = to_int(flag, next(), 1);
      } else if (flag == "--token-id-range") {
        read_token_range(next(), o);
      } else if (flag == "--prompt-file") {
        o.prompt_file = next();
      } else if (flag == "--max-concurrency") {
        o.max_concurrency = to_int(flag, next(), 1);
      } else if (flag == "--request-rate") {
        o.request_rate = to_double(flag, next());
        if (!(o.request_rate > 0)) throw std::invalid_argument("--request-rate must be > 0 (or inf)");
      } else if (flag == "--ignore-eos") {
        no_value();
        o.ignore_eos = true;
      } else if (flag == "--temperature") {
        o.temperature = to_double(flag, next());
      } else if (flag == "--seed") {
        o.seed = uint64_t(to_int(flag, next(), 0));
      } else if (flag == "--api-key") {
        o.api_key = next();
      } else if (flag == "--result-file") {
        o.result_file = next();
      } else if (flag == "--scrape-metrics") {
        no_value();
        o.scrape_metrics = true;
      } else if (flag == "--no-progress") {
        no_value();
        o.progress = false;
      } else {
        throw std::invalid_argument("unknown flag '" + flag + "' (see --help)");
      }
    }
  } catch (const std::invalid_argument& e) {
    parsed.error = e.what();
  }
  return parsed;
}

}  // namespace pagedserve::bench
