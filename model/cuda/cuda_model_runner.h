// The CUDA backend behind the ModelRunner seam (DESIGN.md §9): the Llama-family forward and the
// token sampling of one engine step as kernels enqueued on one stream, with one host-to-device
// copy of the step's metadata at the start and one device-to-host copy of the sampled tokens
// (+ logprobs, + scored prompt positions) at the end: the step's only synchronisation.
//
// Owns everything on the GPU: the weights (uploaded once; bf16/f16 kept, f32 converted to bf16),
// the KV cache (sized from the memory left after weights and scratch, or given), the scratch sized
// for max_num_batched_tokens / max_num_seqs, a cuBLAS handle and the stream. No CUDA header is
// included here, so CPU-only code may include it; construction throws SetupError with a one-line
// reason (no driver, no GPU, a GPU the kernels were not built for, a model that does not fit).
// Engine thread only after construction.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>

#include "core/dtype.h"
#include "core/thread_pool.h"
#include "kvcache/kv_cache.h"
#include "model/llama_model.h"
#include "model/model_runner.h"

namespace pagedserve {

struct CudaRunnerOptions {
  int device = 0;
  double gpu_memory_utilization = 0.9;               // of the card's memory, for weights + scratch + KV
  std::optional<std::size_t> kv_cache_memory_bytes;  // overrides the utilization rule when set
  int page_size = 16;
  int max_num_seqs = 64;
  int max_num_batched_tokens = 2048;
  int max_model_len = 0;  // bounds block-table rows and penalty histories
  bool enforce_eager = false;  // no CUDA graphs: every step's kernels launched one by one
};

class CudaModelRunner final : public ModelRunner {
 public:
  // `pool` is used only while loading (dummy weights, conversion); it may die afterwards.
  CudaModelRunner(const ModelConfig& config, const WeightSource& source, const CudaRunnerOptions& options,
                  ThreadPool& pool);
  ~CudaModelRunner() override;

  const ModelConfig& config() const noexcept override;
  int max_num_batched_tokens() const noexcept override;
  int max_num_seqs() const noexcept override;
  StepOutput run(const ForwardBatch& batch, std::span<const SampleRow> rows) override;
  void release(std::uint64_t sequence_id) override;

  const KVCache& kv_cache() const noexcept;

  // Where the last execute() spent its time on the host: enqueueing (checks, staging, every
  // launch, or one graph launch) and then waiting for the GPU. Enqueue close to the whole step
  // means the GPU waited on the host's launches (what CUDA graphs remove). gpu_idle_seconds: from
  // the end of the previous step's work on the GPU to the start of this one's (CUDA events): the
  // host's time between steps (outputs, scheduling, packing), during which the GPU has nothing.
  struct StepTiming {
    double enqueue_seconds = 0.0;
    double total_seconds = 0.0;
    double gpu_idle_seconds = 0.0;  // 0 for the first step
    bool graphed = false;           // replayed from a decode graph
  };
  StepTiming last_step_timing() const noexcept;
  DType activation_dtype() const noexcept;

 private:
  friend class CudaForwardStep;  // the layer steps of one forward (cuda_model_runner.cpp)
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pagedserve
