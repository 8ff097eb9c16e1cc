// The paged, batched forward against a plain one-token-at-a-time forward (llama_reference_forward.h)
// over mixed decode + prefill batches, chunked prefill and shuffled physical pages.
#include "model/llama_model.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <utility>
#include <vector>

#include "core/error.h"
#include "tests/unit/model/llama_reference_forward.h"
#include "tests/unit/model/one_prompt.h"

namespace pagedserve {
namespace {

ModelConfig tiny_config(ModelArchitecture architecture) {
  ModelConfig config;
  config.architecture = architecture;
  config.hidden_size = 48;
  config.num_hidden_layers = 2;
  config.num_attention_heads = 4;
  config.num_key_value_heads = 2;
  config.head_dim = 16;
  config.intermediate_size = 72;
  config.vocab_size = 97;
  config.rope_theta = 10000.0;
  config.rms_norm_eps = 1e-6;
  config.max_position_embeddings = 256;
  config.tie_word_embeddings = true;
  config.has_qk_norm = architecture == ModelArchitecture::qwen3;
  config.has_qkv_bias = architecture == ModelArchitecture::qwen2;
  if (architecture == ModelArchitecture::llama) {
    config.tie_word_embeddings = false;
    config.rope_scaling.type = RopeScaling::Type::llama3;
    config.rope_scaling.factor = 8.0;
    config.rope_scaling.original_max_position_embeddings = 32;  // so the tiny positions cross bands
  }
  return config;
}

struct Sequence {
  std::vector<std::int32_t> tokens;
  int computed = 0;
  std::vector<std::int32_t> pages;
  std::vector<std::vector<float>> expected;  // [position][vocab] from the reference forward
};

// Drives LlamaModel like the engine does: pages come from a shuffled free list, each step lists
// decode rows (one token each) then prefill chunks, and every token's logits are requested.
class PagedRunner {
 public:
  static constexpr int kPageSize = 16;  // the smallest page size of the contract (DESIGN.md §4)
  static constexpr int kMaxPagesPerSeq = 4;

  PagedRunner(LlamaModel& model, DType cache_dtype, std::mt19937& rng)
      : model_(model), cache_(make_cache_config(model.config(), cache_dtype)) {
    for (int p = 0; p < cache_.num_pages(); ++p) free_pages_.push_back(p);
    std::shuffle(free_pages_.begin(), free_pages_.end(), rng);
  }

  // Runs one step; returns the largest |ours - reference| / max|reference| over all its tokens.
  double step(std::vector<Sequence>& seqs, const std::vector<int>& decode_rows,
              const std::vector<std::pair<int, int>>& prefill_rows) {
    ForwardBatch batch;
    std::vector<std::pair<int, int>> token_origin;  // (sequence, position) of each token
    auto add_part = [&](AttentionBatch& part, const std::vector<std::pair<int, int>>& rows) {
      part.num_rows = static_cast<int>(rows.size());
      part.max_pages_per_seq = kMaxPagesPerSeq;
      part.query_start_len.push_back(0);
      for (auto [s, n] : rows) {
        Sequence& seq = seqs[static_cast<std::size_t>(s)];
        const int end = seq.computed + n;
        while (static_cast<int>(seq.pages.size()) * kPageSize < end) {
          seq.pages.push_back(free_pages_.back());
          free_pages_.pop_back();
        }
        for (int p = seq.computed; p < end; ++p) {
          batch.token_ids.push_back(seq.tokens[static_cast<std::size_t>(p)]);
          batch.positions.push_back(p);
          batch.slot_mapping.push_back(seq.pages[static_cast<std::size_t>(p / kPageSize)] * kPageSize +
                                       p % kPageSize);
          token_origin.emplace_back(s, p);
        }
        part.query_start_len.push_back(part.query_start_len.back() + n);
        part.seq_lens.push_back(end);
        for (int i = 0; i < kMaxPagesPerSeq; ++i) {
          part.block_table.push_back(
              i < static_cast<int>(seq.pages.size()) ? seq.pages[static_cast<std::size_t>(i)] : -1);
        }
      }
    };
    std::vector<std::pair<int, int>> decode_pairs;
    for (int s : decode_rows) decode_pairs.emplace_back(s, 1);
    add_part(batch.decode, decode_pairs);
    add_part(batch.prefill, prefill_rows);
    for (int t = 0; t < batch.num_tokens(); ++t) batch.sample_token_indices.push_back(t);

    const int vocab = model_.config().vocab_size;
    std::vector<float> logits(static_cast<std::size_t>(batch.num_tokens() * vocab));
    model_.forward(batch, cache_, TensorView(logits.data(), DType::f32, {batch.num_tokens(), vocab}));
    for (auto [s, n] : decode_pairs) seqs[static_cast<std::size_t>(s)].computed += n;
    for (auto [s, n] : prefill_rows) seqs[static_cast<std::size_t>(s)].computed += n;

    double worst = 0;
    for (int t = 0; t < batch.num_tokens(); ++t) {
      const auto [s, p] = token_origin[static_cast<std::size_t>(t)];
      const std::vector<float>& want =
          seqs[static_cast<std::size_t>(s)].expected[static_cast<std::size_t>(p)];
      double scale = 0, diff = 0;
      for (int i = 0; i < vocab; ++i) {
        scale = std::max(scale, std::fabs(static_cast<double>(want[i])));
        diff = std::max(
            diff, std::fabs(static_cast<double>(logits[static_cast<std::size_t>(t * vocab + i)]) - want[i]));
      }
      worst = std::max(worst, diff / scale);
    }
    return worst;
  }

 private:
  static KVCacheConfig make_cache_config(const ModelConfig& config, DType dtype) {
    KVCacheConfig kv;
    kv.num_layers = config.num_hidden_layers;
    kv.num_kv_heads = config.num_key_value_heads;
    kv.head_dim = config.head_dim;
    kv.page_size = kPageSize;
    kv.dtype = dtype;
    kv.memory_budget_bytes = KVCache::bytes_per_page(kv) * 80;
    return kv;
  }

  LlamaModel& model_;
  KVCache cache_;
  std::vector<std::int32_t> free_pages_;
};

// Five sequences through six steps: plain prefills, a prompt prefilled in three chunks, decodes
// next to prefills, a late arrival.
double run_schedule(const ModelConfig& config, DType weight_dtype, DType cache_dtype, unsigned seed) {
  std::mt19937 rng(seed);
  ThreadPool pool(3);
  LlamaModel model(config, DummyWeights{seed, weight_dtype}, pool, /*max_num_batched_tokens=*/64);
  std::uniform_int_distribution<std::int32_t> pick(0, config.vocab_size - 1);
  std::vector<Sequence> seqs(5);
  for (Sequence& seq : seqs) {
    seq.tokens.resize(40);
    for (auto& t : seq.tokens) t = pick(rng);
    testing::ReferenceForward reference(config, model.weights());
    for (std::int32_t token : seq.tokens) seq.expected.push_back(reference.step(token));
  }
  PagedRunner runner(model, cache_dtype, rng);
  double worst = 0;
  worst = std::max(worst, runner.step(seqs, {}, {{0, 7}, {1, 5}, {2, 9}}));
  worst = std::max(worst, runner.step(seqs, {0, 1}, {{2, 6}, {3, 3}}));
  worst = std::max(worst, runner.step(seqs, {0, 1, 3}, {{2, 13}, {4, 1}}));
  worst = std::max(worst, runner.step(seqs, {0, 1, 2, 3, 4}, {}));
  worst = std::max(worst, runner.step(seqs, {4, 2}, {{0, 11}, {3, 2}}));
  for (int i = 0; i < 3; ++i) worst = std::max(worst, runner.step(seqs, {0, 1, 2, 3, 4}, {}));
  return worst;
}

class LlamaModelArchitectures : public ::testing::TestWithParam<ModelArchitecture> {};

TEST_P(LlamaModelArchitectures, PagedBatchedForwardEqualsPlainForwardInF32) {
  const unsigned seed = std::random_device{}();
  std::printf("seed %u\n", seed);
  const double worst = run_schedule(tiny_config(GetParam()), DType::f32, DType::f32, seed);
  std::printf("worst relative logit difference %.3g\n", worst);
  EXPECT_LT(worst, 1e-4) << "seed " << seed;
}

TEST_P(LlamaModelArchitectures, Bf16WeightsAndCacheStayClose) {
  const unsigned seed = std::random_device{}();
  std::printf("seed %u\n", seed);
  // bf16 rounding of q, K, V and the attention output (8 bits of mantissa) is the only difference.
  const double worst = run_schedule(tiny_config(GetParam()), DType::bf16, DType::bf16, seed);
  std::printf("worst relative logit difference %.3g\n", worst);
  EXPECT_LT(worst, 3e-2) << "seed " << seed;
}

INSTANTIATE_TEST_SUITE_P(All, LlamaModelArchitectures,
                         ::testing::Values(ModelArchitecture::qwen3, ModelArchitecture::qwen2,
                                           ModelArchitecture::llama));

TEST(LlamaModel, RejectsBatchesItCannotRun) {
  ThreadPool pool(1);
  const ModelConfig config = tiny_config(ModelArchitecture::qwen3);
  LlamaModel model(config, DummyWeights{1, DType::f32}, pool, /*max_num_batched_tokens=*/4);
  KVCache cache = testing::f32_cache(config, 4);
  EXPECT_THROW(model.forward(testing::one_prompt_batch({1, 2, 3, 4, 5}), cache, TensorView()),
               std::invalid_argument);  // over the token limit
  EXPECT_THROW(model.forward(testing::one_prompt_batch({1, 2, config.vocab_size}), cache, TensorView()),
               std::invalid_argument);  // id outside vocab
}

TEST(StepTimes, LlamaModelTimesItsForwardsOnlyWhileAsked) {
  ThreadPool pool(2);
  const ModelConfig config = tiny_config(ModelArchitecture::qwen3);
  LlamaModel model(config, DummyWeights{7, DType::f32}, pool, /*max_num_batched_tokens=*/8);
  KVCache cache = testing::f32_cache(config, 2);
  ForwardBatch batch = testing::one_prompt_batch({1, 2, 3});
  batch.sample_token_indices = {2};
  std::vector<float> logits(static_cast<std::size_t>(config.vocab_size));
  const TensorView logits_view(logits.data(), DType::f32, {1, config.vocab_size});

  StepTimes times;
  model.time_steps(&times);
  model.forward(batch, cache, logits_view);
  EXPECT_EQ(times.calls_of(LayerStep::embed), 1);
  EXPECT_EQ(times.calls_of(LayerStep::qkv_projection), config.num_hidden_layers);
  EXPECT_EQ(times.calls_of(LayerStep::final_norm_and_logits), 1);
  model.time_steps(nullptr);
  model.forward(batch, cache, logits_view);
  EXPECT_EQ(times.calls_of(LayerStep::embed), 1);  // not timed any more
}

TEST(ModelWeights, MissingTensorIsASetupErrorNamingIt) {
  // An empty directory has no safetensors at all; the loader must say so rather than crash.
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / "pagedserve_llama_model_test_empty";
  std::filesystem::create_directories(dir);
  EXPECT_THROW(ModelWeights::load(tiny_config(ModelArchitecture::qwen3), dir), SetupError);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace pagedserve
