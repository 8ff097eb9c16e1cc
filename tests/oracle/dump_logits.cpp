// Runs our CPU forward over prompts (token ids) and writes what the transformers oracle compares:
// for each prompt, the prompt is prefilled (in chunks of --chunk tokens when given), then 32
// greedy tokens are decoded one step at a time. Written to --out DIR:
//   ours.json          {"vocab": V, "prompts": [{"prompt": [...], "greedy": [...], "logits": "p0.f32"}]}
//   p<i>.f32           raw little-endian f32 [len(prompt) + num_greedy - 1, V]: the logits at every
//                      position of prompt + greedy[:-1] (prefill rows, then one per decode step)
// Uses an f32 KV cache so the only rounding is f32 arithmetic.
//   dump_logits --model models/tiny-qwen3 --prompts prompts.txt --out DIR [--chunk N] [--greedy 32]
// prompts.txt: one prompt per line, token ids separated by spaces.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "model/llama_model.h"
#include "model/model_config.h"
#include "tests/oracle/prompt_file.h"

using namespace pagedserve;

namespace {

constexpr int kPageSize = 16;

struct Options {
  std::filesystem::path model_dir, prompts_path, out_dir;
  int chunk = 0;
  int greedy = 32;
};

// Feeds `ids` (positions [first_position, ...)) as one prefill row and returns the logits of all.
std::vector<float> run_row(LlamaModel& model, KVCache& cache, const std::vector<std::int32_t>& ids,
                           int first_position, int max_pages, bool decode) {
  const int vocab = model.config().vocab_size;
  ForwardBatch batch;
  AttentionBatch& part = decode ? batch.decode : batch.prefill;
  const int n = static_cast<int>(ids.size());
  for (int i = 0; i < n; ++i) {
    const int position = first_position + i;
    batch.token_ids.push_back(ids[static_cast<std::size_t>(i)]);
    batch.positions.push_back(position);
    batch.slot_mapping.push_back(position);  // pages 0, 1, 2, ... in order
    batch.sample_token_indices.push_back(i);
  }
  part.num_rows = 1;
  part.max_pages_per_seq = max_pages;
  part.query_start_len = {0, n};
  part.seq_lens = {first_position + n};
  for (int p = 0; p < max_pages; ++p) part.block_table.push_back(p);
  std::vector<float> logits(static_cast<std::size_t>(n) * static_cast<std::size_t>(vocab));
  model.forward(batch, cache, TensorView(logits.data(), DType::f32, {n, vocab}));
  return logits;
}

int run(const Options& options) {
  const ModelConfig config = load_model_config(options.model_dir);
  ThreadPool pool(0);
  const std::vector<std::vector<std::int32_t>> prompts = read_prompt_file(options.prompts_path);
  int longest = 0;
  for (const auto& p : prompts) longest = std::max(longest, static_cast<int>(p.size()));
  const int max_len = longest + options.greedy;
  const int max_pages = (max_len + kPageSize - 1) / kPageSize;
  LlamaModel model(config, CheckpointWeights{options.model_dir}, pool, std::max(longest, 1));
  KVCacheConfig kv{config.num_hidden_layers,
                   config.num_key_value_heads,
                   config.head_dim,
                   kPageSize,
                   DType::f32,
                   Device::cpu,
                   0};
  kv.memory_budget_bytes = KVCache::bytes_per_page(kv) * static_cast<std::size_t>(max_pages);
  KVCache cache(kv);
  const int vocab = config.vocab_size;

  std::filesystem::create_directories(options.out_dir);
  nlohmann::json index = {{"vocab", vocab}, {"prompts", nlohmann::json::array()}};
  for (std::size_t p = 0; p < prompts.size(); ++p) {
    const std::vector<std::int32_t>& prompt = prompts[p];
    std::vector<float> all_logits;
    const int chunk = options.chunk > 0 ? options.chunk : static_cast<int>(prompt.size());
    for (int begin = 0; begin < static_cast<int>(prompt.size()); begin += chunk) {
      const int end = std::min<int>(static_cast<int>(prompt.size()), begin + chunk);
      std::vector<std::int32_t> ids(prompt.begin() + begin, prompt.begin() + end);
      const std::vector<float> logits = run_row(model, cache, ids, begin, max_pages, false);
      all_logits.insert(all_logits.end(), logits.begin(), logits.end());
    }
    std::vector<std::int32_t> greedy;
    for (int g = 0; g < options.greedy; ++g) {
      const float* last = all_logits.data() + all_logits.size() - static_cast<std::size_t>(vocab);
      greedy.push_back(static_cast<std::int32_t>(std::max_element(last, last + vocab) - last));
      if (g + 1 == options.greedy) break;
      const int position = static_cast<int>(prompt.size()) + g;
      const std::vector<float> logits = run_row(model, cache, {greedy.back()}, position, max_pages, true);
      all_logits.insert(all_logits.end(), logits.begin(), logits.end());
    }
    const std::string file = "p" + std::to_string(p) + ".f32";
    std::ofstream out(options.out_dir / file, std::ios::binary);
    out.write(reinterpret_cast<const char*>(all_logits.data()),
              static_cast<std::streamsize>(all_logits.size() * sizeof(float)));
    index["prompts"].push_back({{"prompt", prompt}, {"greedy", greedy}, {"logits", file}});
  }
  std::ofstream(options.out_dir / "ours.json") << index.dump() << "\n";
  std::printf("wrote %zu prompts to %s\n", prompts.size(), options.out_dir.string().c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--model") options.model_dir = value;
    if (flag == "--prompts") options.prompts_path = value;
    if (flag == "--out") options.out_dir = value;
    if (flag == "--chunk") options.chunk = std::stoi(value);
    if (flag == "--greedy") options.greedy = std::stoi(value);
  }
  if (options.model_dir.empty() || options.prompts_path.empty() || options.out_dir.empty()) {
    std::fprintf(stderr,
                 "usage: dump_logits --model DIR --prompts FILE --out DIR [--chunk N] [--greedy 32]\n");
    return 2;
  }
  try {
    return run(options);
  } catch (const std::exception& error) {
    std::fprintf(stderr, "dump_logits: %s\n", error.what());
    return 1;
  }
}
