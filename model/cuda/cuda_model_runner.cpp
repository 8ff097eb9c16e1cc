#include "model/cuda/cuda_model_runner.h"

#include <cuda_runtime.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string>
#include <unordered_map>

#include "core/error.h"
#include "kernels/cpu/embedding.h"
#include "kernels/cuda/attention_cuda.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/gemm_cuda.h"
#include "kernels/cuda/model_ops_cuda.h"
#include "kernels/cuda/sampling_cuda.h"
#include "model/cuda/decode_graphs.h"
#include "model/cuda/device_weights.h"
#include "model/cuda/step_staging.h"
#include "model/llama_layers.h"

namespace pagedserve {
namespace {

using cuda_detail::check_cuda;

float* f32(const Buffer& buffer) { return static_cast<float*>(buffer.data()); }

double gib(std::size_t bytes) { return static_cast<double>(bytes) / double(1ull << 30); }

// The device and its memory before anything of ours is on it; refuses what cannot run here.
cudaDeviceProp open_device(int device) {
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    throw SetupError("--backend cuda",
                     std::string("no usable CUDA driver or GPU: ") + cudaGetErrorString(status));
  }
  if (count == 0) throw SetupError("--backend cuda", "no CUDA GPU found");
  if (device < 0 || device >= count) {
    throw SetupError("--device " + std::to_string(device),
                     "out of range: this machine has " + std::to_string(count) + " CUDA GPU(s)");
  }
  check_cuda(cudaSetDevice(device), "cudaSetDevice");
  cudaDeviceProp prop{};
  check_cuda(cudaGetDeviceProperties(&prop, device), "cudaGetDeviceProperties");
  if (prop.major != 9 || prop.minor != 0) {
    throw SetupError("--backend cuda", std::string("GPU ") + std::to_string(device) + " (" + prop.name +
                                           ") is compute capability " + std::to_string(prop.major) + "." +
                                           std::to_string(prop.minor) +
                                           "; the kernels are built for sm_90a (H100/H200) only");
  }
  return prop;
}

// The tokens' device dtype: the checkpoint's bf16/f16, with f32 checkpoints run in bf16.
DType activation_dtype_for(const ModelWeights& weights) {
  const DType stored = weights.embed_tokens.dtype();
  if (stored == DType::f16) return DType::f16;
  if (stored == DType::f32) spdlog::info("f32 checkpoint: weights converted to bf16 for the GPU");
  return DType::bf16;
}

// The seed of a request that gave none, drawn once per sequence (kept in Impl::seeds).
std::uint64_t fresh_seed() {
  static thread_local std::mt19937_64 generator{std::random_device{}()};
  return generator();
}

// Whether two stagings put a decode step's forward inputs at the same device addresses.
bool same_inputs(const StagedStep& a, const StagedStep& b) {
  return a.token_ids == b.token_ids && a.positions == b.positions && a.slot_mapping == b.slot_mapping &&
         a.logits_token_indices == b.logits_token_indices &&
         a.decode.query_start_len == b.decode.query_start_len && a.decode.seq_lens == b.decode.seq_lens &&
         a.decode.block_table == b.decode.block_table && a.decode.num_rows == b.decode.num_rows &&
         a.decode.max_pages_per_seq == b.decode.max_pages_per_seq &&
         a.prefill.num_rows == b.prefill.num_rows && a.prefill.num_tokens == b.prefill.num_tokens;
}

}  // namespace

struct CudaModelRunner::Impl {
  Impl(const ModelConfig& model_config, const WeightSource& source, const CudaRunnerOptions& opts,
       ThreadPool& pool);
  ~Impl();

  void check_batch(const ForwardBatch& batch, std::span<const SampleRow> rows) const;
  void stage(const ForwardBatch& batch, std::span<const SampleRow> rows);
  void capture_decode_graphs();
  void enqueue_forward(int num_tokens, int num_logits_rows);
  void begin_step_timing();
  void finish_step_timing(const std::chrono::steady_clock::time_point& enqueued);
  void log_step_summary() const;
  void run_attention(int layer, const StagedAttention& part, int first_token, bool decode);
  StepOutput collect(std::span<const SampleRow> rows, const ForwardBatch& batch);
  PagedAttentionArgs attention_args(int layer, const StagedAttention& part, int first_token) const;

  ModelConfig config;
  CudaRunnerOptions options;
  cudaDeviceProp prop{};
  cudaStream_t stream = nullptr;
  DType act = DType::bf16;
  std::unique_ptr<DeviceWeights> weights;
  std::unique_ptr<CublasGemm> gemm;
  std::unique_ptr<KVCache> cache;
  std::unique_ptr<StepStaging> staging;
  int max_pages_per_seq = 0;

  // Device scratch; T = max_num_batched_tokens, S = max_num_seqs, act = activation dtype. Logits
  // rows: S sampled + S scored (prompt logprobs).
  Buffer residual;        // [T, hidden] f32
  Buffer normed;          // [T, hidden] act
  Buffer qkv;             // [T, q_size + 2 kv_size] f32
  Buffer q_attention;     // [T, q_size] act
  Buffer out_attention;   // [T, q_size] act
  Buffer delta;           // [T, hidden] f32: o_proj / down output, before it joins the residual
  Buffer gate_up;         // [T, 2 intermediate] act
  Buffer mlp;             // [T, intermediate] act
  Buffer sampled_hidden;  // [2S, hidden] act
  Buffer logits;          // [2S, vocab] f32
  Buffer inv_freq;        // [head_dim / 2] f32
  Buffer decode_workspace;
  Buffer sampling_workspace;
  Buffer sampled;                           // [2S] SampledTokenRow
  SampledTokenRow* sampled_host = nullptr;  // [2S] pinned

  // Decode graphs and the staged pointers each was captured with (a replay must find the same).
  std::unique_ptr<DecodeGraphs> graphs;
  std::unordered_map<int, StagedStep> graph_inputs;  // bucket -> staging of its capture

  // Step timing: an event where each step's GPU work begins and two where steps end (this one's
  // and the previous one's), plus totals for the summary logged at shutdown.
  cudaEvent_t step_begin = nullptr;
  cudaEvent_t step_end[2] = {nullptr, nullptr};
  long long steps_run = 0;
  long long steps_graphed = 0;
  double sum_enqueue = 0.0, sum_total = 0.0, sum_idle = 0.0;

  std::unordered_map<std::uint64_t, std::uint64_t> seeds;  // sequence -> seed of unseeded requests
  std::vector<SamplingRowParams> row_params;               // [2S] host scratch of stage(), reused every step
  CudaModelRunner::StepTiming last_timing;
  std::chrono::steady_clock::time_point step_start;
};

CudaModelRunner::Impl::Impl(const ModelConfig& model_config, const WeightSource& source,
                            const CudaRunnerOptions& opts, ThreadPool& pool)
    : config(model_config), options(opts) {
  prop = open_device(options.device);
  std::size_t free_bytes = 0;
  std::size_t total_bytes = 0;
  check_cuda(cudaMemGetInfo(&free_bytes, &total_bytes), "cudaMemGetInfo");
  spdlog::info("CUDA device {}: {} ({} SMs, {:.1f} GiB, {:.1f} GiB free)", options.device, prop.name,
               prop.multiProcessorCount, gib(total_bytes), gib(free_bytes));
  check_cuda(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate");

  const auto t0 = std::chrono::steady_clock::now();
  {
    const ModelWeights host = load_model_weights(config, source, pool);
    act = activation_dtype_for(host);
    const std::size_t needed = DeviceWeights::device_bytes(config, act);
    if (needed > free_bytes) {
      throw SetupError("--backend cuda", "the weights need " + std::to_string(gib(needed)) + " GiB, GPU " +
                                             std::to_string(options.device) + " has " +
                                             std::to_string(gib(free_bytes)) + " GiB free");
    }
    weights = std::make_unique<DeviceWeights>(config, host, act);
  }
  spdlog::info("weights on GPU in {:.2f} s: {:.2f} GiB {}",
               std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(),
               gib(weights->nbytes()), dtype_name(act));

  gemm = std::make_unique<CublasGemm>(stream);
  const std::int64_t t = options.max_num_batched_tokens;
  const std::int64_t s = options.max_num_seqs;
  const std::int64_t hidden = config.hidden_size;
  const std::size_t a = dtype_size(act);
  auto device_buffer = [](std::int64_t elements, std::size_t element_bytes) {
    return Buffer(static_cast<std::size_t>(std::max<std::int64_t>(elements, 1)) * element_bytes,
                  Device::cuda);
  };
  residual = device_buffer(t * hidden, sizeof(float));
  normed = device_buffer(t * hidden, a);
  qkv = device_buffer(t * (config.q_size() + 2 * config.kv_size()), sizeof(float));
  q_attention = device_buffer(t * config.q_size(), a);
  out_attention = device_buffer(t * config.q_size(), a);
  delta = device_buffer(t * hidden, sizeof(float));
  gate_up = device_buffer(t * 2 * config.intermediate_size, a);
  mlp = device_buffer(t * config.intermediate_size, a);
  sampled_hidden = device_buffer(2 * s * hidden, a);
  logits = device_buffer(2 * s * config.vocab_size, sizeof(float));
  const std::vector<float> frequencies = model_rope_inv_freq(config);
  inv_freq = device_buffer(static_cast<std::int64_t>(frequencies.size()), sizeof(float));
  copy_bytes(inv_freq.data(), Device::cuda, frequencies.data(), Device::cpu,
             frequencies.size() * sizeof(float));
  sampling_workspace =
      Buffer(std::max<std::size_t>(
                 sample_tokens_cuda_workspace_bytes(static_cast<int>(2 * s), config.vocab_size), 16),
             Device::cuda);
  sampled = device_buffer(2 * s, sizeof(SampledTokenRow));
  check_cuda(cudaMallocHost(reinterpret_cast<void**>(&sampled_host),
                            static_cast<std::size_t>(2 * s) * sizeof(SampledTokenRow)),
             "cudaMallocHost");

  max_pages_per_seq = (options.max_model_len + options.page_size - 1) / options.page_size;
  staging = std::make_unique<StepStaging>(StepStaging::Capacity{static_cast<int>(t), static_cast<int>(s),
                                                                max_pages_per_seq, options.max_model_len});

  // Split-KV scratch of the decode kernel: a function of the batch capacity and head shapes.
  {
    PagedAttentionArgs shape_args;
    const std::int64_t kv_heads = config.num_key_value_heads;
    const std::int64_t group = config.num_attention_heads / config.num_key_value_heads;
    shape_args.q = TensorView(nullptr, act, {s, kv_heads, group, config.head_dim}, Device::cuda);
    shape_args.out = shape_args.q;
    shape_args.k_cache =
        TensorView(nullptr, act, {1, options.page_size, kv_heads, config.head_dim}, Device::cuda);
    shape_args.v_cache = shape_args.k_cache;
    shape_args.block_table = TensorView(nullptr, DType::i32, {s, max_pages_per_seq}, Device::cuda);
    shape_args.seq_lens = TensorView(nullptr, DType::i32, {s}, Device::cuda);
    shape_args.query_start_len = TensorView(nullptr, DType::i32, {s + 1}, Device::cuda);
    decode_workspace =
        Buffer(std::max<std::size_t>(decode_attention_cuda_workspace_bytes(shape_args), 16), Device::cuda);
  }

  // The KV cache takes what is left of the budget. Activations live in the scratch above, all
  // allocated already, so what is in use now is the measured peak (plus cuBLAS's own margin).
  check_cuda(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
  check_cuda(cudaMemGetInfo(&free_bytes, &total_bytes), "cudaMemGetInfo");
  const std::size_t used = total_bytes - free_bytes;
  constexpr std::size_t kLibraryMargin = std::size_t(256) << 20;  // cuBLAS/driver lazy allocations
  KVCacheConfig kv;
  kv.num_layers = config.num_hidden_layers;
  kv.num_kv_heads = config.num_key_value_heads;
  kv.head_dim = config.head_dim;
  kv.page_size = options.page_size;
  kv.dtype = act;
  kv.device = Device::cuda;
  const std::size_t page_bytes = KVCache::bytes_per_page(kv);
  std::size_t budget = 0;
  if (options.kv_cache_memory_bytes) {
    budget = *options.kv_cache_memory_bytes;
    if (budget + kLibraryMargin > free_bytes) {
      throw SetupError("--kv-cache-memory", "asks " + std::to_string(gib(budget)) + " GiB, only " +
                                                std::to_string(gib(free_bytes)) +
                                                " GiB are free after weights and scratch");
    }
  } else {
    const double allowed = options.gpu_memory_utilization * static_cast<double>(total_bytes);
    const double left = allowed - static_cast<double>(used) - static_cast<double>(kLibraryMargin);
    if (left < static_cast<double>(page_bytes)) {
      throw SetupError("--gpu-memory-utilization", "weights and scratch use " + std::to_string(gib(used)) +
                                                       " GiB of " + std::to_string(gib(total_bytes)) +
                                                       " GiB; at " +
                                                       std::to_string(options.gpu_memory_utilization) +
                                                       " nothing is left for the KV cache");
    }
    budget = static_cast<std::size_t>(left);
  }
  kv.memory_budget_bytes = budget;
  cache = std::make_unique<KVCache>(kv);
  const long long tokens = static_cast<long long>(cache->num_pages()) * options.page_size;
  spdlog::info(
      "KV cache on GPU: {} pages x {} tokens = {} tokens, {:.2f} GiB {} ({} bytes per page); "
      "{:.1f} sequences of max_model_len {} fit at once",
      cache->num_pages(), options.page_size, tokens,
      gib(page_bytes * static_cast<std::size_t>(cache->num_pages())), dtype_name(act), page_bytes,
      static_cast<double>(tokens) / options.max_model_len, options.max_model_len);

  for (cudaEvent_t* event : {&step_begin, &step_end[0], &step_end[1]}) {
    check_cuda(cudaEventCreate(event), "cudaEventCreate");
  }
  if (options.enforce_eager) {
    spdlog::info("CUDA graphs off (--enforce-eager): every step launches its kernels one by one");
  } else {
    capture_decode_graphs();
  }
}

void CudaModelRunner::Impl::begin_step_timing() {
  check_cuda(cudaEventRecord(step_begin, stream), "cudaEventRecord");
}

void CudaModelRunner::Impl::finish_step_timing(const std::chrono::steady_clock::time_point& enqueued) {
  cudaEvent_t end = step_end[steps_run % 2];
  cudaEvent_t previous_end = step_end[(steps_run + 1) % 2];
  check_cuda(cudaEventRecord(end, stream), "cudaEventRecord");
  check_cuda(cudaStreamSynchronize(stream), "cudaStreamSynchronize(step)");
  const auto done = std::chrono::steady_clock::now();
  last_timing.enqueue_seconds = std::chrono::duration<double>(enqueued - step_start).count();
  last_timing.total_seconds = std::chrono::duration<double>(done - step_start).count();
  last_timing.gpu_idle_seconds = 0.0;
  if (steps_run > 0) {
    float idle_ms = 0.0f;
    check_cuda(cudaEventElapsedTime(&idle_ms, previous_end, step_begin), "cudaEventElapsedTime");
    last_timing.gpu_idle_seconds = std::max(0.0, static_cast<double>(idle_ms) * 1e-3);
  }
  ++steps_run;
  steps_graphed += last_timing.graphed ? 1 : 0;
  sum_enqueue += last_timing.enqueue_seconds;
  sum_total += last_timing.total_seconds;
  sum_idle += last_timing.gpu_idle_seconds;
}

void CudaModelRunner::Impl::log_step_summary() const {
  if (steps_run == 0) return;
  const double n = static_cast<double>(steps_run);
  spdlog::info(
      "CUDA steps: {} ({} from decode graphs); per step: host enqueue {:.3f} ms, step {:.3f} ms, GPU idle "
      "before it {:.3f} ms (mean)",
      steps_run, steps_graphed, sum_enqueue / n * 1e3, sum_total / n * 1e3,
      steps_run > 1 ? sum_idle / (n - 1) * 1e3 : 0.0);
}

CudaModelRunner::Impl::~Impl() {
  if (stream != nullptr) cudaStreamSynchronize(stream);
  log_step_summary();
  graphs.reset();
  for (cudaEvent_t event : {step_begin, step_end[0], step_end[1]}) {
    if (event != nullptr) cudaEventDestroy(event);
  }
  if (sampled_host != nullptr) cudaFreeHost(sampled_host);
  gemm.reset();
  if (stream != nullptr) cudaStreamDestroy(stream);
}

void CudaModelRunner::Impl::check_batch(const ForwardBatch& batch, std::span<const SampleRow> rows) const {
  check_forward_batch(batch, config.vocab_size, options.max_num_batched_tokens, "CudaModelRunner::execute");
  auto fail = [](const std::string& what) {
    throw std::invalid_argument("CudaModelRunner::execute: " + what);
  };
  if (batch.decode.num_tokens() != batch.decode.num_rows) fail("a decode row has other than one token");
  for (const AttentionBatch* part : {&batch.decode, &batch.prefill}) {
    if (part->num_rows > options.max_num_seqs) fail("more rows than max_num_seqs");
    if (part->max_pages_per_seq > max_pages_per_seq) fail("block table wider than max_model_len allows");
  }
  if (rows.size() != batch.sample_token_indices.size() ||
      static_cast<int>(rows.size()) > options.max_num_seqs) {
    fail(std::to_string(rows.size()) + " sampling rows for " +
         std::to_string(batch.sample_token_indices.size()) + " sampled tokens");
  }
  if (static_cast<int>(batch.scored_positions.size()) > options.max_num_seqs) {
    fail(std::to_string(batch.scored_positions.size()) + " scored positions, at most max_num_seqs");
  }
  for (const PageCopy& copy : batch.page_copies) (void)cache->copy_ranges(copy);  // throws on a bad page
  const std::int64_t slots = static_cast<std::int64_t>(cache->num_pages()) * cache->page_size();
  for (std::int32_t slot : batch.slot_mapping) {
    if (slot >= slots) fail("slot " + std::to_string(slot) + " outside the KV cache");
  }
  for (const SampleRow& row : rows) {
    if (row.params == nullptr) fail("a sampling row without parameters");
    if (row.params->num_logprobs > kMaxSampleLogprobs) {
      fail("logprobs " + std::to_string(row.params->num_logprobs) + " above " +
           std::to_string(kMaxSampleLogprobs));
    }
  }
}

void CudaModelRunner::Impl::stage(const ForwardBatch& batch, std::span<const SampleRow> rows) {
  std::vector<SamplingRowParams>& params = row_params;
  params.assign(rows.size() + batch.scored_positions.size(), SamplingRowParams{});
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const SamplingParams& p = *rows[i].params;
    SamplingRowParams& r = params[i];
    r.temperature = p.temperature;
    r.top_p = p.top_p;
    r.top_k = p.top_k;
    r.min_p = p.min_p;
    r.presence_penalty = p.presence_penalty;
    r.frequency_penalty = p.frequency_penalty;
    r.repetition_penalty = p.repetition_penalty;
    r.num_logprobs = p.num_logprobs;
    if (p.seed) {
      r.seed = *p.seed;
    } else {
      auto [it, added] = seeds.try_emplace(rows[i].sequence_id, 0);
      if (added) it->second = fresh_seed();
      r.seed = it->second;
    }
    r.output_index = static_cast<std::int32_t>(rows[i].output_ids.size());
  }
  // Score rows: greedy (nothing drawn), no penalty or bias; the kernel reports the given token.
  for (std::size_t i = 0; i < batch.scored_positions.size(); ++i) {
    SamplingRowParams& r = params[rows.size() + i];
    r.temperature = 0.0f;
    r.num_logprobs = batch.scored_positions[i].num_logprobs;
    r.score_token = batch.scored_positions[i].next_token;
  }
  staging->pack(batch, rows, params);
  begin_step_timing();  // the GPU has been idle until this step's first copy
  staging->upload(stream);
}

PagedAttentionArgs CudaModelRunner::Impl::attention_args(int layer, const StagedAttention& part,
                                                         int first_token) const {
  const std::int64_t kv_heads = config.num_key_value_heads;
  const std::int64_t group = config.num_attention_heads / config.num_key_value_heads;
  const std::int64_t head_dim = config.head_dim;
  const std::int64_t tokens = part.num_tokens;
  const std::int64_t row_bytes = kv_heads * group * head_dim * static_cast<std::int64_t>(dtype_size(act));
  PagedAttentionArgs args;
  args.q = TensorView(static_cast<char*>(q_attention.data()) + first_token * row_bytes, act,
                      {tokens, kv_heads, group, head_dim}, Device::cuda);
  args.out = TensorView(static_cast<char*>(out_attention.data()) + first_token * row_bytes, act,
                        {tokens, kv_heads, group, head_dim}, Device::cuda);
  args.k_cache = cache->key_cache(layer);
  args.v_cache = cache->value_cache(layer);
  args.block_table =
      TensorView(part.block_table, DType::i32, {part.num_rows, part.max_pages_per_seq}, Device::cuda);
  args.seq_lens = TensorView(part.seq_lens, DType::i32, {part.num_rows}, Device::cuda);
  args.query_start_len = TensorView(part.query_start_len, DType::i32, {part.num_rows + 1}, Device::cuda);
  args.softmax_scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  return args;
}

void CudaModelRunner::Impl::run_attention(int layer, const StagedAttention& part, int first_token,
                                          bool decode) {
  if (part.num_rows == 0 || part.num_tokens == 0) return;
  const PagedAttentionArgs args = attention_args(layer, part, first_token);
  if (decode) {
    decode_attention_cuda(args, decode_workspace.data(), decode_workspace.nbytes(), stream);
  } else {
    prefill_attention_cuda(args, stream);
  }
}

// One CUDA forward: the steps of run_llama_layers (model/llama_layers.h) enqueued on the runner's
// stream over its device scratch. Lives for one execute() call.
class CudaForwardStep {
 public:
  CudaForwardStep(CudaModelRunner::Impl& m, int num_tokens, int num_logits_rows)
      : m_(m),
        step_(m.staging->device_step()),
        t_(num_tokens),
        num_logits_rows_(num_logits_rows),
        eps_(static_cast<float>(m.config.rms_norm_eps)) {}

  void embed() {
    embedding_gather_cuda(m_.weights->embed_tokens, m_.act, step_.token_ids, t_, m_.config.hidden_size,
                          f32(m_.residual), m_.stream);
  }

  void attention_norm(int layer) {
    add_rms_norm_cuda(f32(m_.residual), layer == 0 ? nullptr : f32(m_.delta), weights(layer).input_norm,
                      m_.normed.data(), m_.act, t_, m_.config.hidden_size, eps_, m_.stream);
  }

  void qkv_projection(int layer) {
    const int width = m_.config.q_size() + 2 * m_.config.kv_size();
    m_.gemm->matmul(m_.normed.data(), weights(layer).qkv_proj, m_.qkv.data(), m_.act, DType::f32, t_, width,
                    m_.config.hidden_size);
  }

  // The QKV bias is added here too, in the same kernel as q/k norm, RoPE and the cache write.
  void position_and_cache(int layer) {
    const DeviceLayerWeights& w = weights(layer);
    QkvEpilogueShape shape;
    shape.num_tokens = t_;
    shape.num_q_heads = m_.config.num_attention_heads;
    shape.num_kv_heads = m_.config.num_key_value_heads;
    shape.head_dim = m_.config.head_dim;
    shape.page_size = m_.options.page_size;
    shape.eps = eps_;
    qkv_epilogue_cuda(f32(m_.qkv), w.qkv_bias, w.q_norm, w.k_norm, f32(m_.inv_freq), step_.positions,
                      step_.slot_mapping, m_.q_attention.data(), m_.cache->key_cache(layer).data(),
                      m_.cache->value_cache(layer).data(), m_.act, shape, m_.stream);
  }

  void attention(int layer) {
    m_.run_attention(layer, step_.decode, 0, /*decode=*/true);
    m_.run_attention(layer, step_.prefill, step_.decode.num_tokens, /*decode=*/false);
  }

  void output_projection(int layer) {
    m_.gemm->matmul(m_.out_attention.data(), weights(layer).o_proj, m_.delta.data(), m_.act, DType::f32, t_,
                    m_.config.hidden_size, m_.config.q_size());
  }

  void mlp_norm(int layer) {
    add_rms_norm_cuda(f32(m_.residual), f32(m_.delta), weights(layer).post_attention_norm, m_.normed.data(),
                      m_.act, t_, m_.config.hidden_size, eps_, m_.stream);
  }

  void gate_up_projection(int layer) {
    m_.gemm->matmul(m_.normed.data(), weights(layer).gate_up_proj, m_.gate_up.data(), m_.act, m_.act, t_,
                    2 * m_.config.intermediate_size, m_.config.hidden_size);
  }

  void activation() {
    silu_mul_cuda(m_.gate_up.data(), m_.mlp.data(), m_.act, t_, m_.config.intermediate_size, m_.stream);
  }

  void down_projection(int layer) {
    m_.gemm->matmul(m_.mlp.data(), weights(layer).down_proj, m_.delta.data(), m_.act, DType::f32, t_,
                    m_.config.hidden_size, m_.config.intermediate_size);
  }

  // The final norm runs over every token (cheap), then only the sampled and scored rows go through
  // lm_head.
  void final_norm_and_logits() {
    if (num_logits_rows_ == 0) return;
    add_rms_norm_cuda(f32(m_.residual), f32(m_.delta), m_.weights->final_norm, m_.normed.data(), m_.act, t_,
                      m_.config.hidden_size, eps_, m_.stream);
    gather_rows_cuda(m_.normed.data(), step_.logits_token_indices, m_.sampled_hidden.data(), m_.act,
                     num_logits_rows_, m_.config.hidden_size, m_.stream);
    m_.gemm->matmul(m_.sampled_hidden.data(), m_.weights->lm_head, m_.logits.data(), m_.act, DType::f32,
                    num_logits_rows_, m_.config.vocab_size, m_.config.hidden_size);
  }

 private:
  const DeviceLayerWeights& weights(int layer) const {
    return m_.weights->layers[static_cast<std::size_t>(layer)];
  }

  CudaModelRunner::Impl& m_;
  const StagedStep& step_;
  int t_;
  int num_logits_rows_;
  float eps_;
};

void CudaModelRunner::Impl::enqueue_forward(int num_tokens, int num_logits_rows) {
  CudaForwardStep step(*this, num_tokens, num_logits_rows);
  run_llama_layers(step, config.num_hidden_layers);
}

void CudaModelRunner::Impl::capture_decode_graphs() {
  const auto start = std::chrono::steady_clock::now();
  std::size_t free_before = 0, free_after = 0, total = 0;
  check_cuda(cudaMemGetInfo(&free_before, &total), "cudaMemGetInfo");
  graphs = std::make_unique<DecodeGraphs>(stream);
  const int max_rows = std::min(options.max_num_seqs, options.max_num_batched_tokens);
  for (int rows : DecodeGraphs::bucket_sizes(max_rows)) {
    // Inactive rows only: the capture records launches, and a replay of it touches no K/V.
    const ForwardBatch padded = padded_decode_batch(ForwardBatch{}, rows, max_pages_per_seq);
    staging->pack(padded, {}, {});
    staging->upload(stream);
    check_cuda(cudaStreamSynchronize(stream), "cudaStreamSynchronize(graph staging)");
    graphs->capture(rows, [&] { enqueue_forward(rows, rows); });
    graph_inputs[rows] = staging->device_step();
  }
  check_cuda(cudaStreamSynchronize(stream), "cudaStreamSynchronize(graphs)");
  check_cuda(cudaMemGetInfo(&free_after, &total), "cudaMemGetInfo");
  spdlog::info("CUDA graphs: {} decode batch sizes (1..{}) captured in {:.2f} s, {:.1f} MiB of GPU memory",
               graphs->count(), max_rows,
               std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(),
               static_cast<double>(free_before > free_after ? free_before - free_after : 0) / double(1 << 20));
}

StepOutput CudaModelRunner::Impl::collect(std::span<const SampleRow> rows, const ForwardBatch& batch) {
  const auto enqueued = std::chrono::steady_clock::now();
  const int num_rows = static_cast<int>(rows.size());
  const int num_logits_rows = batch.num_logits_rows();
  check_cuda(cudaMemcpyAsync(sampled_host, sampled.data(),
                             static_cast<std::size_t>(num_logits_rows) * sizeof(SampledTokenRow),
                             cudaMemcpyDeviceToHost, stream),
             "cudaMemcpyAsync(sampled tokens)");
  finish_step_timing(enqueued);
  const auto top = [](const SampledTokenRow& row, int wanted) {
    std::vector<std::pair<std::int32_t, float>> alternatives;
    for (int k = 0; k < wanted; ++k) alternatives.emplace_back(row.top_ids[k], row.top_logprobs[k]);
    return alternatives;
  };
  StepOutput out;
  out.sampled.resize(rows.size());
  for (int i = 0; i < num_rows; ++i) {
    const SampledTokenRow& row = sampled_host[i];
    SampledToken& token = out.sampled[static_cast<std::size_t>(i)];
    token.token = row.token;
    token.logprob = row.logprob;
    token.top_logprobs = top(row, rows[static_cast<std::size_t>(i)].params->num_logprobs);
  }
  out.scored.resize(batch.scored_positions.size());
  for (std::size_t i = 0; i < batch.scored_positions.size(); ++i) {
    const SampledTokenRow& row = sampled_host[static_cast<std::size_t>(num_rows) + i];
    ScoredToken& token = out.scored[i];
    token.token = row.token;
    token.logprob = row.logprob;
    token.rank = row.rank;
    token.top_logprobs = top(row, batch.scored_positions[i].num_logprobs);
  }
  return out;
}

CudaModelRunner::CudaModelRunner(const ModelConfig& config, const WeightSource& source,
                                 const CudaRunnerOptions& options, ThreadPool& pool)
    : impl_(std::make_unique<Impl>(config, source, options, pool)) {}

CudaModelRunner::~CudaModelRunner() = default;

const ModelConfig& CudaModelRunner::config() const noexcept { return impl_->config; }
int CudaModelRunner::max_num_batched_tokens() const noexcept { return impl_->options.max_num_batched_tokens; }
int CudaModelRunner::max_num_seqs() const noexcept { return impl_->options.max_num_seqs; }
const KVCache& CudaModelRunner::kv_cache() const noexcept { return *impl_->cache; }
DType CudaModelRunner::activation_dtype() const noexcept { return impl_->act; }
CudaModelRunner::StepTiming CudaModelRunner::last_step_timing() const noexcept { return impl_->last_timing; }
void CudaModelRunner::release(std::uint64_t sequence_id) { impl_->seeds.erase(sequence_id); }

StepOutput CudaModelRunner::run(const ForwardBatch& batch, std::span<const SampleRow> rows) {
  Impl& m = *impl_;
  m.step_start = std::chrono::steady_clock::now();
  m.check_batch(batch, rows);
  const int num_tokens = batch.num_tokens();
  if (num_tokens == 0) return {};
  const int num_logits_rows = batch.num_logits_rows();
  // Copy-on-write of partly filled pages, ahead of this step's K/V writes on the same stream.
  for (const PageCopy& copy : batch.page_copies) {
    for (const KVCache::ByteRange& range : m.cache->copy_ranges(copy)) {
      check_cuda(cudaMemcpyAsync(range.target, range.source, range.bytes, cudaMemcpyDeviceToDevice, m.stream),
                 "cudaMemcpyAsync(page copy)");
    }
  }
  const int bucket =
      m.graphs && is_plain_decode(batch) ? m.graphs->bucket_for(static_cast<int>(rows.size())) : 0;
  m.last_timing.graphed = bucket > 0;
  if (bucket > 0) {
    // Padded to the bucket, the step's metadata lands where the bucket's graph reads it.
    m.stage(padded_decode_batch(batch, bucket, m.max_pages_per_seq), rows);
    if (!same_inputs(m.staging->device_step(), m.graph_inputs.at(bucket))) {
      throw std::logic_error("CudaModelRunner: staged decode step is not where its graph reads it");
    }
    m.graphs->launch(bucket);
  } else {
    m.stage(batch, rows);
    m.enqueue_forward(num_tokens, num_logits_rows);
  }
  if (num_logits_rows == 0) {
    m.finish_step_timing(std::chrono::steady_clock::now());
    return {};
  }
  const StagedStep& staged = m.staging->device_step();
  sample_tokens_cuda(f32(m.logits), staged.sampling_rows, staged.history, staged.logit_bias, num_logits_rows,
                     m.config.vocab_size, m.sampling_workspace.data(), m.sampling_workspace.nbytes(),
                     static_cast<SampledTokenRow*>(m.sampled.data()), m.stream);
  return m.collect(rows, batch);
}

}  // namespace pagedserve
