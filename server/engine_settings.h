// What the engine side of `pagedserve serve` / `generate` is built from (model, backend, KV
// cache, scheduler limits). Plain data filled by the CLI and the JSON config.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace pagedserve {

struct EngineSettings {
  std::string model_dir;
  std::string backend = "cpu";        // cpu | cuda
  std::string load_format = "auto";   // auto (safetensors in model_dir) | dummy (seeded random weights)
  std::uint64_t dummy_seed = 0;       // weights seed for load_format dummy
  int threads = 0;                    // CPU kernel threads; 0 = one per core
  int page_size = 16;                 // tokens per KV page
  int max_num_seqs = 64;              // running sequences per step at most
  int max_num_batched_tokens = 2048;  // tokens computed per step at most
  int max_model_len = 0;              // 0 = the model's max_position_embeddings
  // K and V of all layers; 0 = automatic: 1 GiB on the CPU, on CUDA what gpu_memory_utilization
  // leaves after weights and scratch.
  std::size_t kv_cache_memory_bytes = 0;
  int device = 0;                       // CUDA device index
  double gpu_memory_utilization = 0.9;  // CUDA: share of the card for weights + scratch + KV
  std::string kv_cache_dtype = "bf16";  // bf16 | f16 | f32
  bool enforce_eager = false;           // CUDA: no decode graphs
  bool enable_prefix_caching = true;
};

}  // namespace pagedserve
