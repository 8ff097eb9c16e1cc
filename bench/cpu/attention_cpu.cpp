// CPU paged attention: decode over a batch x length grid and prefill cases, GQA 32/8/128 (a
// Llama-3-8B layer; --heads for another) and page size 16. Prints µs per call, GB/s of live K/V
// read (bytes = live K/V + q + out) and its ratio to this machine's read bandwidth, measured in the
// same run by a large multi-threaded read (bench/cpu/read_bandwidth.h, the yardstick of the other
// CPU benches; measured again after the decode grid, so that a drift of the shared host shows).
// Physical pages are shuffled; when one layer's K/V would fit in the last-level cache, calls rotate
// over enough layers' caches that every call reads from DRAM.
//   attention_cpu [--threads N] [--dtype bf16|f16|f32] [--repeats R] [--cold-mib M] [--only-decode 1]
//                 [--batches 1,8,32] [--lens 512,2048,8192] [--path auto|avx2|portable]
//                 [--heads KV_HEADS,GROUP,HEAD_DIM (default 8,4,128; Qwen2.5-0.5B is 2,7,64)]
// --path avx2 runs the inner loop an AVX2-only CPU would run (the anchor machines).
// --cold-mib 0 keeps one layer (K/V of small cases then sits in cache: a compute-speed probe, e.g.
// --cold-mib 0 --threads 1 --batches 1 --lens 64 --repeats 200).
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "bench/cpu/read_bandwidth.h"
#include "core/buffer.h"
#include "core/dtype.h"
#include "core/half.h"
#include "core/thread_pool.h"
#include "kernels/attention.h"
#include "kernels/cpu/attention_cpu.h"

using namespace pagedserve;

namespace {

constexpr std::int64_t kPageSize = 16;

// KV heads, query heads per KV head, head_dim: --heads KV,GROUP,HEAD_DIM (default a Llama-3-8B layer).
struct Heads {
  std::int64_t kv_heads = 8, group = 4, head_dim = 128;
};

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::vector<int> parse_list(const char* text) {
  std::vector<int> values;
  for (const char* p = text; *p;) {
    char* end = nullptr;
    values.push_back(static_cast<int>(std::strtol(p, &end, 10)));
    p = *end == ',' ? end + 1 : end;
    if (end == p && *p) break;
  }
  return values;
}

// "KV,GROUP,HEAD_DIM", each a whole number in 1..1024 and nothing else; false otherwise.
bool parse_heads(const char* text, Heads& heads) {
  std::int64_t values[3];
  const char* p = text;
  for (int i = 0; i < 3; ++i) {
    char* end = nullptr;
    errno = 0;
    const long value = std::strtol(p, &end, 10);
    if (end == p || errno != 0 || value < 1 || value > 1024 || *end != (i < 2 ? ',' : '\0')) return false;
    values[i] = value;
    p = end + 1;
  }
  heads = Heads{values[0], values[1], values[2]};
  return true;
}

struct Row {
  std::int32_t seq_len, q_len;
};

// One batch with enough independent K/V caches ("layers") of just the live pages (shuffled) that
// rotating over them reads at least `cold_bytes` (0: one layer).
class Batch {
 public:
  Batch(const std::vector<Row>& rows, const Heads& heads, DType dtype, std::size_t cold_bytes,
        std::uint64_t seed)
      : heads_(heads), dtype_(dtype) {
    std::mt19937_64 rng(seed);
    capacity_ = static_cast<std::int64_t>(rows.size());
    qsl_.assign(rows.size() + 1, 0);
    std::int64_t pages = 0;
    for (std::size_t s = 0; s < rows.size(); ++s) {
      seq_lens_.push_back(rows[s].seq_len);
      qsl_[s + 1] = qsl_[s] + rows[s].q_len;
      const std::int64_t row_pages = (rows[s].seq_len + kPageSize - 1) / kPageSize;
      max_pages_ = std::max(max_pages_, row_pages);
      pages += row_pages;
      live_tokens_ += rows[s].seq_len;
      visible_keys_ +=
          rows[s].q_len * (rows[s].seq_len - rows[s].q_len) + rows[s].q_len * (rows[s].q_len + 1) / 2;
    }
    num_pages_ = std::max<std::int64_t>(pages, 1);
    max_pages_ = std::max<std::int64_t>(max_pages_, 1);
    std::vector<std::int32_t> pool(static_cast<std::size_t>(num_pages_));
    std::iota(pool.begin(), pool.end(), 0);
    std::shuffle(pool.begin(), pool.end(), rng);
    block_table_.assign(static_cast<std::size_t>(capacity_ * max_pages_), -1);
    std::size_t next = 0;
    for (std::size_t s = 0; s < rows.size(); ++s) {
      for (std::int64_t p = 0; p < (rows[s].seq_len + kPageSize - 1) / kPageSize; ++p) {
        block_table_[s * static_cast<std::size_t>(max_pages_) + static_cast<std::size_t>(p)] = pool[next++];
      }
    }
    num_tokens_ = std::max<std::int64_t>(qsl_.back(), 1);
    const std::size_t elem = dtype_size(dtype);
    const std::size_t cache_bytes =
        static_cast<std::size_t>(num_pages_ * kPageSize * heads_.kv_heads * heads_.head_dim) * elem;
    const std::size_t layers =
        std::max<std::size_t>(1, (cold_bytes + 2 * cache_bytes - 1) / (2 * cache_bytes));
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    std::vector<std::uint8_t> pattern(std::min<std::size_t>(cache_bytes, std::size_t{1} << 20));
    for (std::size_t i = 0; i < pattern.size() / elem; ++i) store(pattern.data(), i, dist(rng));
    for (std::size_t l = 0; l < 2 * layers; ++l) {
      caches_.emplace_back(cache_bytes, Device::cpu);
      auto* bytes = static_cast<std::uint8_t*>(caches_.back().data());
      for (std::size_t off = 0; off < cache_bytes; off += pattern.size()) {
        std::memcpy(bytes + off, pattern.data(), std::min(pattern.size(), cache_bytes - off));
      }
    }
    const std::size_t q_bytes =
        static_cast<std::size_t>(num_tokens_ * heads_.kv_heads * heads_.group * heads_.head_dim) * elem;
    q_ = Buffer(q_bytes, Device::cpu);
    out_ = Buffer(q_bytes, Device::cpu);
    for (std::size_t i = 0; i < q_bytes / elem; ++i) store(q_.data(), i, dist(rng));
  }

  std::size_t layers() const { return caches_.size() / 2; }

  PagedAttentionArgs args(std::size_t layer) {
    PagedAttentionArgs a;
    a.q = q_.view(dtype_, {num_tokens_, heads_.kv_heads, heads_.group, heads_.head_dim});
    a.out = out_.view(dtype_, {num_tokens_, heads_.kv_heads, heads_.group, heads_.head_dim});
    a.k_cache = caches_[2 * layer].view(dtype_, {num_pages_, kPageSize, heads_.kv_heads, heads_.head_dim});
    a.v_cache =
        caches_[2 * layer + 1].view(dtype_, {num_pages_, kPageSize, heads_.kv_heads, heads_.head_dim});
    a.block_table = TensorView(block_table_.data(), DType::i32, {capacity_, max_pages_});
    a.seq_lens = TensorView(seq_lens_.data(), DType::i32, {capacity_});
    a.query_start_len = TensorView(qsl_.data(), DType::i32, {capacity_ + 1});
    a.softmax_scale = 1.0f / std::sqrt(static_cast<float>(heads_.head_dim));
    return a;
  }

  // Bytes a call must move: live K/V + q + out.
  double bytes() const {
    const double elem = static_cast<double>(dtype_size(dtype_));
    return elem * (2.0 * static_cast<double>(live_tokens_) * heads_.kv_heads * heads_.head_dim +
                   2.0 * static_cast<double>(qsl_.back()) * heads_.kv_heads * heads_.group * heads_.head_dim);
  }
  double flops() const {
    return 4.0 * heads_.kv_heads * heads_.group * heads_.head_dim * static_cast<double>(visible_keys_);
  }

 private:
  void store(void* data, std::size_t i, float value) const {
    if (dtype_ == DType::f32) static_cast<float*>(data)[i] = value;
    if (dtype_ == DType::bf16) static_cast<bf16*>(data)[i] = to_bf16(value);
    if (dtype_ == DType::f16) static_cast<f16*>(data)[i] = to_f16(value);
  }

  Heads heads_;
  DType dtype_;
  std::int64_t capacity_ = 0, max_pages_ = 0, num_pages_ = 0, num_tokens_ = 0, live_tokens_ = 0,
               visible_keys_ = 0;
  std::vector<std::int32_t> seq_lens_, qsl_, block_table_;
  std::vector<Buffer> caches_;  // k, v per layer
  Buffer q_, out_;
};

struct Timing {
  double median_us, best_us;
};

template <typename Call>
Timing time_calls(Batch& batch, int repeats, Call call) {
  std::vector<double> us;
  const std::size_t layers = batch.layers();
  call(batch.args(0));  // warm-up (scratch, page tables)
  for (int r = 0; r < repeats; ++r) {
    for (std::size_t l = 0; l < layers; ++l) {
      const auto start = std::chrono::steady_clock::now();
      call(batch.args(l));
      us.push_back(seconds_since(start) * 1e6);
      if (us.size() >= 200) break;
    }
  }
  std::sort(us.begin(), us.end());
  return {us[us.size() / 2], us.front()};
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 0;
  int repeats = 3;
  std::size_t cold_bytes = std::size_t{512} << 20;  // far above the 105 MiB L3
  bool only_decode = false;
  AttentionPath path = AttentionPath::automatic;
  DType dtype = DType::bf16;
  std::vector<int> batches = {1, 8, 32}, lens = {512, 2048, 8192};
  Heads heads;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--threads")) threads = std::stoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--repeats")) repeats = std::stoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--cold-mib")) cold_bytes = std::stoull(argv[i + 1]) << 20;
    if (!std::strcmp(argv[i], "--only-decode")) only_decode = std::stoi(argv[i + 1]) != 0;
    if (!std::strcmp(argv[i], "--path")) {
      const std::string name = argv[i + 1];
      path = name == "avx2"       ? AttentionPath::avx2
             : name == "portable" ? AttentionPath::portable
                                  : AttentionPath::automatic;
    }
    if (!std::strcmp(argv[i], "--batches")) batches = parse_list(argv[i + 1]);
    if (!std::strcmp(argv[i], "--lens")) lens = parse_list(argv[i + 1]);
    if (!std::strcmp(argv[i], "--heads") && !parse_heads(argv[i + 1], heads)) {
      std::fprintf(stderr,
                   "attention_cpu: --heads wants KV_HEADS,GROUP,HEAD_DIM, each 1-1024, e.g. 2,7,64\n");
      return 2;
    }
    if (!std::strcmp(argv[i], "--dtype")) {
      const std::string name = argv[i + 1];
      dtype = name == "f32" ? DType::f32 : name == "f16" ? DType::f16 : DType::bf16;
    }
  }
  ThreadPool pool(threads);
  const double bandwidth = measure_read_bandwidth(pool);  // 1 GiB, all threads, best of 5
  std::printf("attention_cpu: %d threads, %s K/V, GQA %lld/%lld heads, head_dim %lld, page %lld, path %s\n",
              pool.size(), std::string(dtype_name(dtype)).c_str(),
              static_cast<long long>(heads.kv_heads * heads.group), static_cast<long long>(heads.kv_heads),
              static_cast<long long>(heads.head_dim), static_cast<long long>(kPageSize),
              path == AttentionPath::avx2       ? "avx2"
              : path == AttentionPath::portable ? "portable"
                                                : "auto (AVX-512 where the CPU has it)");
  std::printf("read bandwidth (1 GiB, all threads, best of 5): %.2f GB/s\n\n", bandwidth / 1e9);

  std::printf("decode              median_us    best_us   GB/s(median)  of_bw\n");
  auto decode = [&](PagedAttentionArgs a) { decode_attention(a, pool, path); };
  for (int b : batches) {
    for (int len : lens) {
      Batch batch(std::vector<Row>(static_cast<std::size_t>(b), Row{len, 1}), heads, dtype, cold_bytes,
                  1000 + b + len);
      const Timing t = time_calls(batch, repeats, decode);
      const double gbs = batch.bytes() / (t.median_us * 1e-6) / 1e9;
      std::printf("B=%-3d L=%-5d      %10.1f %10.1f %12.2f %7.0f%%\n", b, len, t.median_us, t.best_us, gbs,
                  100.0 * gbs * 1e9 / bandwidth);
    }
  }

  std::printf("read bandwidth after the decode grid: %.2f GB/s\n", measure_read_bandwidth(pool) / 1e9);

  if (only_decode) return 0;
  std::printf("\ncapacity is not work: 8 live rows of L=2048\n");
  for (int capacity : {8, 256}) {
    std::vector<Row> rows(static_cast<std::size_t>(capacity), Row{0, 0});
    for (int i = 0; i < 8; ++i) rows[static_cast<std::size_t>(i * capacity / 8)] = Row{2048, 1};
    Batch batch(rows, heads, dtype, cold_bytes, 77);
    const Timing t = time_calls(batch, repeats, decode);
    const double gbs = batch.bytes() / (t.median_us * 1e-6) / 1e9;
    std::printf("capacity %-3d       %10.1f %10.1f %12.2f %7.0f%%\n", capacity, t.median_us, t.best_us, gbs,
                100.0 * gbs * 1e9 / bandwidth);
  }

  std::printf("\nprefill (seq_len/q_len per row)       median_us    best_us   GFLOP/s\n");
  auto prefill = [&](PagedAttentionArgs a) { prefill_attention(a, pool, path); };
  const std::vector<std::pair<const char*, std::vector<Row>>> cases = {
      {"1 x 512/512 (prompt)", {{512, 512}}},
      {"1 x 2048/2048 (prompt)", {{2048, 2048}}},
      {"1 x 2304/256 (chunk after 2048)", {{2304, 256}}},
      {"mixed 4 x 256/256 + 28 decodes 1024",
       [] {
         std::vector<Row> rows(28, Row{1024, 1});
         for (int i = 0; i < 4; ++i) rows.push_back(Row{256, 256});
         return rows;
       }()},
  };
  for (const auto& [name, rows] : cases) {
    Batch batch(rows, heads, dtype, cold_bytes, 5);
    const Timing t = time_calls(batch, 1, prefill);
    std::printf("%-36s %10.1f %10.1f %9.1f\n", name, t.median_us, t.best_us,
                batch.flops() / (t.median_us * 1e-6) / 1e9);
  }
  return 0;
}
