#include "kernels/cpu/attention_cpu.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/half.h"
#include "core/tensor_view.h"
#include "kernels/cpu/attention_tile.h"

namespace pagedserve {
namespace {

using attention_detail::AttendBlock;
using attention_detail::kTileKeys;

constexpr float kLog2e = 1.4426950408889634f;
// A K/V split shorter than this costs more in merging and scheduling than it balances.
constexpr std::int64_t kMinSplitKeys = 4 * kTileKeys;
// Query vectors (rows x heads of a group) per prefill task: enough to reuse each K/V tile many
// times, few enough that the accumulators ([vectors, head_dim] f32) stay in L1/L2.
constexpr int kPrefillVectors = 64;

void require(bool condition, const std::string& what) {
  if (!condition) throw std::invalid_argument("paged attention (cpu): " + what);
}

bool is_float(DType dtype) { return dtype == DType::f32 || dtype == DType::bf16 || dtype == DType::f16; }

// Shapes and strides every task needs, read once.
struct Geometry {
  DType dtype = DType::f32;
  std::int64_t num_kv_heads = 0;
  std::int64_t group = 0;  // heads_per_kv
  std::int64_t head_dim = 0;
  std::int64_t page_size = 0;
  std::int64_t num_pages = 0;
  std::int64_t capacity = 0;
  std::int64_t max_pages = 0;
  const std::int32_t* block_table = nullptr;  // [capacity, max_pages]
  const std::int32_t* seq_lens = nullptr;     // [capacity]
  const std::int32_t* qsl = nullptr;          // [capacity + 1]

  std::int64_t q_begin(std::int64_t s) const { return qsl[s]; }
  std::int64_t q_len(std::int64_t s) const { return qsl[s + 1] - qsl[s]; }
  std::int64_t seq_len(std::int64_t s) const { return seq_lens[s]; }
};

Geometry check_args(const PagedAttentionArgs& a, bool decode_only) {
  require(a.sliding_window == 0, "sliding_window is reserved and must be 0");
  require(a.logit_softcap == 0.0f, "logit_softcap is reserved and must be 0");
  require(std::isfinite(a.softmax_scale), "softmax_scale must be finite");
  require(a.q.rank() == 4 && a.out.rank() == 4,
          "q and out must be [num_tokens, num_kv_heads, heads_per_kv, head_dim]");
  require(a.k_cache.rank() == 4 && a.v_cache.rank() == 4,
          "k_cache and v_cache must be [num_pages, page_size, num_kv_heads, head_dim]");
  require(a.block_table.rank() == 2, "block_table must be [batch_capacity, max_pages_per_seq]");
  require(a.seq_lens.rank() == 1 && a.query_start_len.rank() == 1,
          "seq_lens and query_start_len must be 1-D");
  for (const TensorView* v :
       {&a.q, &a.k_cache, &a.v_cache, &a.out, &a.block_table, &a.seq_lens, &a.query_start_len}) {
    require(v->device() == Device::cpu, "every tensor must be a CPU view");
  }
  require(is_float(a.q.dtype()) && a.k_cache.dtype() == a.q.dtype() && a.v_cache.dtype() == a.q.dtype() &&
              a.out.dtype() == a.q.dtype(),
          "q, k_cache, v_cache and out must share one dtype of f32, bf16, f16");
  require(a.block_table.dtype() == DType::i32 && a.seq_lens.dtype() == DType::i32 &&
              a.query_start_len.dtype() == DType::i32,
          "block_table, seq_lens and query_start_len must be i32");
  for (int d = 0; d < 4; ++d) {
    require(a.k_cache.size(d) == a.v_cache.size(d), "k_cache and v_cache shapes differ");
    require(a.out.size(d) == a.q.size(d), "out and q shapes differ");
  }
  require(a.q.size(1) == a.k_cache.size(2) && a.q.size(3) == a.k_cache.size(3),
          "q and k_cache disagree on num_kv_heads or head_dim");
  require(a.q.size(1) > 0 && a.q.size(2) > 0 && a.q.size(3) > 0 && a.k_cache.size(1) > 0,
          "empty head or page dimensions");
  require(a.k_cache.is_contiguous() && a.v_cache.is_contiguous(), "k_cache and v_cache must be contiguous");
  require(a.q.stride(3) == 1 && a.out.stride(3) == 1, "q and out rows must be contiguous along head_dim");
  require(a.block_table.is_contiguous() && a.seq_lens.is_contiguous() && a.query_start_len.is_contiguous(),
          "metadata must be contiguous");

  Geometry g;
  g.dtype = a.q.dtype();
  g.num_kv_heads = a.q.size(1);
  g.group = a.q.size(2);
  g.head_dim = a.q.size(3);
  g.page_size = a.k_cache.size(1);
  g.num_pages = a.k_cache.size(0);
  g.capacity = a.seq_lens.size(0);
  g.max_pages = a.block_table.size(1);
  require(a.block_table.size(0) == g.capacity, "block_table rows != batch_capacity");
  require(a.query_start_len.size(0) == g.capacity + 1,
          "query_start_len must have batch_capacity + 1 entries");
  g.block_table = a.block_table.data_as<const std::int32_t>();
  g.seq_lens = a.seq_lens.data_as<const std::int32_t>();
  g.qsl = a.query_start_len.data_as<const std::int32_t>();

  // Metadata: cheap next to the K/V it guards (one i32 per live page).
  require(g.capacity == 0 || g.qsl[0] >= 0, "query_start_len[0] must be >= 0");
  for (std::int64_t s = 0; s < g.capacity; ++s) {
    const std::int64_t q_len = g.q_len(s);
    const std::int64_t seq_len = g.seq_len(s);
    auto row = [s] { return "row " + std::to_string(s) + ": "; };  // built only on failure
    if (q_len < 0 || g.qsl[s + 1] > a.q.size(0))
      require(false, row() + "query_start_len must not decrease nor pass num_tokens");
    if (seq_len < q_len) require(false, row() + "seq_len must be >= q_len");
    if (decode_only && q_len > 1)
      require(false, row() + "decode rows must have q_len 1 (or 0 when inactive)");
    if (q_len == 0) continue;
    const std::int64_t pages = (seq_len + g.page_size - 1) / g.page_size;
    if (pages > g.max_pages) require(false, row() + "seq_len needs more pages than block_table holds");
    for (std::int64_t p = 0; p < pages; ++p) {
      const std::int64_t page = g.block_table[s * g.max_pages + p];
      if (page < 0 || page >= g.num_pages)
        require(false, row() + "block_table[" + std::to_string(p) + "] is not a page");
    }
  }
  return g;
}

// Which inner loop the tasks run (one choice per kernel call).
enum class Isa { portable, avx2, avx512 };

// One unit of parallel work: a block of query rows of one sequence and KV heads
// [kv_head, kv_head + num_kv_heads) over one range of keys. partial < 0: write the normalised
// output; else the (acc, max, sum) partial slot.
struct Task {
  std::int32_t seq = 0;
  std::int32_t kv_head = 0;
  std::int32_t num_kv_heads = 1;
  std::int32_t first_row = 0;  // within the sequence's query rows
  std::int32_t num_rows = 0;
  std::int64_t key_begin = 0;
  std::int64_t key_end = 0;
  std::int64_t partial = -1;
};

// Per-thread scratch that grows to the largest task seen, then is reused. Per KV head block:
// q and acc [vectors, head_dim], row_max and row_sum [padded]; shared: key_limit, scores, alpha.
struct Scratch {
  std::vector<float> q, acc, row_max, row_sum, scores, alpha;
  std::vector<std::int32_t> key_limit;
  std::vector<AttendBlock> blocks;

  void prepare(int heads, int vectors, std::int64_t head_dim) {
    const int padded = std::max(8, attention_detail::padded_vectors(vectors));
    const std::size_t elements = static_cast<std::size_t>(heads * vectors * head_dim);
    const std::size_t lanes = static_cast<std::size_t>(heads * padded);
    if (q.size() < elements) {
      q.resize(elements);
      acc.resize(elements);
    }
    if (row_max.size() < lanes) {
      row_max.resize(lanes);
      row_sum.resize(lanes);
    }
    if (key_limit.size() < static_cast<std::size_t>(padded)) {
      alpha.resize(padded);
      key_limit.resize(padded);
      scores.resize(static_cast<std::size_t>(padded) * kTileKeys);
    }
    if (blocks.size() < static_cast<std::size_t>(heads)) blocks.resize(heads);
    std::fill_n(acc.begin(), elements, 0.0f);
    std::fill_n(row_max.begin(), lanes, -std::numeric_limits<float>::infinity());
    std::fill_n(row_sum.begin(), lanes, 0.0f);
    std::fill_n(scores.begin(), static_cast<std::size_t>(padded) * kTileKeys, 0.0f);
    std::fill_n(key_limit.begin(), padded, std::numeric_limits<std::int32_t>::max());
  }
};

Scratch& thread_scratch() {
  thread_local Scratch scratch;
  return scratch;
}

template <typename T>
void load_scaled_row(const void* src, float scale, std::int64_t n, float* dst) {
  const T* in = static_cast<const T*>(src);
  for (std::int64_t i = 0; i < n; ++i) dst[i] = load_as_float(in[i]) * scale;
}

void load_scaled(DType dtype, const void* src, float scale, std::int64_t n, float* dst) {
  switch (dtype) {
    case DType::f32:
      return load_scaled_row<float>(src, scale, n, dst);
    case DType::bf16:
      return load_scaled_row<bf16>(src, scale, n, dst);
    case DType::f16:
      return load_scaled_row<f16>(src, scale, n, dst);
    case DType::i32:
      return;
  }
}

template <typename T>
void store_scaled_row(const float* src, float scale, std::int64_t n, void* dst) {
  T* out = static_cast<T*>(dst);
  for (std::int64_t i = 0; i < n; ++i) out[i] = store_from_float<T>(src[i] * scale);
}

void store_scaled(DType dtype, const float* src, float scale, std::int64_t n, void* dst) {
  switch (dtype) {
    case DType::f32:
      return store_scaled_row<float>(src, scale, n, dst);
    case DType::bf16:
      return store_scaled_row<bf16>(src, scale, n, dst);
    case DType::f16:
      return store_scaled_row<f16>(src, scale, n, dst);
    case DType::i32:
      return;
  }
}

// Address of q/out element [token, kv_head, g, 0].
void* head_row(const TensorView& view, std::int64_t token, std::int64_t kv_head, std::int64_t g) {
  const std::int64_t element = token * view.stride(0) + kv_head * view.stride(1) + g * view.stride(2);
  return static_cast<char*>(view.data()) + element * static_cast<std::int64_t>(dtype_size(view.dtype()));
}

// Partials of a split: per KV head, per vector (acc[head_dim], max, sum).
std::int64_t partial_floats(const Geometry& g) { return g.num_kv_heads * g.group * (g.head_dim + 2); }

void run_task(const PagedAttentionArgs& a, const Geometry& g, Isa isa, const Task& task, float* partials) {
  const int vectors = static_cast<int>(task.num_rows * g.group);
  const int padded = attention_detail::padded_vectors(vectors);
  const std::int64_t block_elements = vectors * g.head_dim;
  Scratch& scratch = thread_scratch();
  scratch.prepare(task.num_kv_heads, vectors, g.head_dim);
  const std::int64_t q_begin = g.q_begin(task.seq);
  const std::int64_t context_len = g.seq_len(task.seq) - g.q_len(task.seq);
  const float q_scale = a.softmax_scale * kLog2e;
  for (int r = 0; r < task.num_rows; ++r) {
    for (std::int64_t h = 0; h < g.group; ++h) {
      scratch.key_limit[r * g.group + h] = static_cast<std::int32_t>(context_len + task.first_row + r + 1);
    }
  }
  for (int i = 0; i < task.num_kv_heads; ++i) {
    const std::int64_t kv_head = task.kv_head + i;
    float* q = scratch.q.data() + i * block_elements;
    for (int r = 0; r < task.num_rows; ++r) {
      const std::int64_t token = q_begin + task.first_row + r;
      for (std::int64_t h = 0; h < g.group; ++h) {
        load_scaled(g.dtype, head_row(a.q, token, kv_head, h), q_scale, g.head_dim,
                    q + (r * g.group + h) * g.head_dim);
      }
    }
    AttendBlock& block = scratch.blocks[i];
    block.dtype = g.dtype;
    block.head_dim = static_cast<int>(g.head_dim);
    block.num_vectors = vectors;
    block.padded = padded;
    block.q = q;
    block.key_limit = scratch.key_limit.data();
    block.min_key_limit = context_len + task.first_row + 1;
    block.k_cache = a.k_cache.data();
    block.v_cache = a.v_cache.data();
    block.slot_stride = g.num_kv_heads * g.head_dim;
    block.page_stride = g.page_size * block.slot_stride;
    block.head_offset = kv_head * g.head_dim;
    block.page_size = static_cast<int>(g.page_size);
    block.pages = g.block_table + task.seq * g.max_pages;
    block.acc = scratch.acc.data() + i * block_elements;
    block.row_max = scratch.row_max.data() + i * padded;
    block.row_sum = scratch.row_sum.data() + i * padded;
    block.scores = scratch.scores.data();
    block.alpha = scratch.alpha.data();
  }
  switch (isa) {
    case Isa::avx512:
      attention_detail::attend_keys_avx512(scratch.blocks.data(), task.num_kv_heads, task.key_begin,
                                           task.key_end);
      break;
    case Isa::avx2:
      attention_detail::attend_keys_avx2(scratch.blocks.data(), task.num_kv_heads, task.key_begin,
                                         task.key_end);
      break;
    case Isa::portable:
      attention_detail::attend_keys_portable(scratch.blocks.data(), task.num_kv_heads, task.key_begin,
                                             task.key_end);
      break;
  }

  for (int i = 0; i < task.num_kv_heads; ++i) {
    const AttendBlock& block = scratch.blocks[i];
    const std::int64_t kv_head = task.kv_head + i;
    if (task.partial >= 0) {  // decode splits: one row
      float* partial = partials + task.partial * partial_floats(g) + kv_head * g.group * (g.head_dim + 2);
      for (std::int64_t v = 0; v < vectors; ++v) {
        float* slot = partial + v * (g.head_dim + 2);
        std::memcpy(slot, block.acc + v * g.head_dim, static_cast<std::size_t>(g.head_dim) * sizeof(float));
        slot[g.head_dim] = block.row_max[v];
        slot[g.head_dim + 1] = block.row_sum[v];
      }
      continue;
    }
    for (int r = 0; r < task.num_rows; ++r) {
      const std::int64_t token = q_begin + task.first_row + r;
      for (std::int64_t h = 0; h < g.group; ++h) {
        const std::int64_t v = r * g.group + h;
        store_scaled(g.dtype, block.acc + v * g.head_dim, 1.0f / block.row_sum[v], g.head_dim,
                     head_row(a.out, token, kv_head, h));
      }
    }
  }
}

// Combines the splits of one row: out = sum_k acc_k 2^(m_k - M) / sum_k l_k 2^(m_k - M).
void merge_splits(const PagedAttentionArgs& a, const Geometry& g, const Task* splits, int num_splits,
                  const float* partials, float* combined /*[head_dim]*/) {
  const std::int64_t token = g.q_begin(splits[0].seq);
  for (std::int64_t vector = 0; vector < g.num_kv_heads * g.group; ++vector) {
    auto part = [&](int k) {
      return partials + splits[k].partial * partial_floats(g) + vector * (g.head_dim + 2);
    };
    float max = -std::numeric_limits<float>::infinity();
    for (int k = 0; k < num_splits; ++k) max = std::max(max, part(k)[g.head_dim]);
    float sum = 0.0f;
    std::fill_n(combined, g.head_dim, 0.0f);
    for (int k = 0; k < num_splits; ++k) {
      const float* p = part(k);
      const float weight = std::exp2(p[g.head_dim] - max);
      sum += p[g.head_dim + 1] * weight;
      for (std::int64_t i = 0; i < g.head_dim; ++i) combined[i] += p[i] * weight;
    }
    store_scaled(g.dtype, combined, 1.0f / sum, g.head_dim,
                 head_row(a.out, token, vector / g.group, vector % g.group));
  }
}

Isa choose_isa(AttentionPath path, const Geometry& g) {
  const int head_dim = static_cast<int>(g.head_dim);
  if (path == AttentionPath::automatic && attention_detail::avx512_attention_usable(head_dim))
    return Isa::avx512;
  if (path != AttentionPath::portable && attention_detail::avx2_attention_usable(head_dim)) return Isa::avx2;
  return Isa::portable;
}

std::int64_t round_up_to_tiles(std::int64_t keys) { return (keys + kTileKeys - 1) / kTileKeys * kTileKeys; }

// Splits of a decode row of seq_len keys cut every split_keys keys.
std::int64_t splits_of(std::int64_t seq_len, std::int64_t split_keys) {
  return (seq_len + split_keys - 1) / split_keys;
}

// Decode tasks made when each of `rows` is cut into splits of split_keys keys.
std::int64_t count_tasks(const Geometry& g, const std::vector<std::int32_t>& rows, std::int64_t split_keys) {
  std::int64_t tasks = 0;
  for (std::int32_t s : rows) tasks += splits_of(g.seq_len(s), split_keys);
  return tasks;
}

}  // namespace

void decode_attention(const PagedAttentionArgs& args, ThreadPool& pool, AttentionPath path) {
  const Geometry g = check_args(args, /*decode_only=*/true);
  const Isa isa = choose_isa(path, g);

  // Longest rows first, so the dynamic hand-out ends with short tasks.
  thread_local std::vector<std::int32_t> rows;
  rows.clear();
  std::int64_t total_keys = 0;
  for (std::int64_t s = 0; s < g.capacity; ++s) {
    if (g.q_len(s) == 1) {
      rows.push_back(static_cast<std::int32_t>(s));
      total_keys += g.seq_len(s);
    }
  }
  if (rows.empty()) return;
  std::stable_sort(rows.begin(), rows.end(),
                   [&](std::int32_t x, std::int32_t y) { return g.seq_len(x) > g.seq_len(y); });

  // A decode task takes every KV head of its row, so it reads whole slots front to back (the
  // hardware prefetchers follow that; per-head tasks would read 1/num_kv_heads of each line run).
  // Split a row along K/V only when it is longer than a fair share of ~4 tasks per thread, in
  // splits of at least kMinSplitKeys. When that leaves threads without a task (few rows on many
  // threads: batch 1 on 16 threads made 2 tasks at 512 keys), the splits are a fair share of one
  // task per thread, down to one tile (under kMinSplitKeys keys in all, splits measured slower than
  // the one task run inline: bench/RESULTS.md).
  const std::int64_t threads = pool.size();
  const std::int64_t fair_share = (total_keys + 4 * threads - 1) / (4 * threads);
  std::int64_t split_keys = round_up_to_tiles(std::max(kMinSplitKeys, fair_share));
  if (total_keys >= kMinSplitKeys && count_tasks(g, rows, split_keys) < threads) {
    split_keys = round_up_to_tiles(std::max<std::int64_t>(kTileKeys, (total_keys + threads - 1) / threads));
  }

  thread_local std::vector<Task> tasks;
  thread_local std::vector<std::int64_t> merges;  // index of the first split task of each split row
  tasks.clear();
  merges.clear();
  std::int64_t num_partials = 0;
  for (std::int32_t s : rows) {
    const std::int64_t seq_len = g.seq_len(s);
    const std::int64_t splits = splits_of(seq_len, split_keys);
    if (splits > 1) merges.push_back(static_cast<std::int64_t>(tasks.size()));
    for (std::int64_t k = 0; k < splits; ++k) {
      Task task;
      task.seq = s;
      task.kv_head = 0;
      task.num_kv_heads = static_cast<std::int32_t>(g.num_kv_heads);
      task.num_rows = 1;
      task.key_begin = k * split_keys;
      task.key_end = std::min(seq_len, (k + 1) * split_keys);
      task.partial = splits > 1 ? num_partials++ : -1;
      tasks.push_back(task);
    }
  }
  thread_local std::vector<float> partials;
  if (partials.size() < static_cast<std::size_t>(num_partials * partial_floats(g))) {
    partials.resize(static_cast<std::size_t>(num_partials * partial_floats(g)));
  }
  float* partial_data = partials.data();
  const Task* task_data = tasks.data();
  pool.parallel_for(static_cast<std::int64_t>(tasks.size()),
                    [&](std::int64_t i) { run_task(args, g, isa, task_data[i], partial_data); });
  if (merges.empty()) return;
  const std::int64_t* merge_data = merges.data();
  const std::int64_t num_tasks = static_cast<std::int64_t>(tasks.size());
  pool.parallel_for(static_cast<std::int64_t>(merges.size()), [&](std::int64_t i) {
    const std::int64_t first = merge_data[i];
    std::int64_t last = first + 1;
    while (last < num_tasks && task_data[last].seq == task_data[first].seq) ++last;
    thread_local std::vector<float> combined;
    combined.resize(static_cast<std::size_t>(g.head_dim));
    merge_splits(args, g, task_data + first, static_cast<int>(last - first), partial_data, combined.data());
  });
}

void prefill_attention(const PagedAttentionArgs& args, ThreadPool& pool, AttentionPath path) {
  const Geometry g = check_args(args, /*decode_only=*/false);
  const Isa isa = choose_isa(path, g);
  const std::int64_t tile_rows = std::max<std::int64_t>(1, kPrefillVectors / g.group);

  thread_local std::vector<Task> tasks;
  tasks.clear();
  for (std::int64_t s = 0; s < g.capacity; ++s) {
    const std::int64_t q_len = g.q_len(s);
    const std::int64_t context_len = g.seq_len(s) - q_len;
    for (std::int64_t t0 = 0; t0 < q_len; t0 += tile_rows) {
      const std::int64_t rows = std::min(tile_rows, q_len - t0);
      for (std::int64_t h = 0; h < g.num_kv_heads; ++h) {
        Task task;
        task.seq = static_cast<std::int32_t>(s);
        task.kv_head = static_cast<std::int32_t>(h);
        task.first_row = static_cast<std::int32_t>(t0);
        task.num_rows = static_cast<std::int32_t>(rows);
        task.key_end = std::min(g.seq_len(s), context_len + t0 + rows);  // the tile's visible prefix
        tasks.push_back(task);
      }
    }
  }
  // Most work first: the dynamic hand-out then ends with the cheap tiles.
  std::stable_sort(tasks.begin(), tasks.end(), [](const Task& x, const Task& y) {
    return x.key_end * x.num_rows > y.key_end * y.num_rows;
  });
  const Task* task_data = tasks.data();
  pool.parallel_for(static_cast<std::int64_t>(tasks.size()),
                    [&](std::int64_t i) { run_task(args, g, isa, task_data[i], nullptr); });
}

}  // namespace pagedserve
