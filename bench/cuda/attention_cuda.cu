// Benchmark of the CUDA paged-attention kernels on issue 4's cases: GQA 32 Q / 8 KV heads,
// head_dim 128, bf16, permuted pages. Each timing: CUDA events around one step (decode =
// split-KV kernel + merge; prefill = one kernel), L2 flushed before every repetition by
// reading a 256 MiB buffer, median of the repetitions after warm-up. Decode is reported in
// TB/s of bytes that must move (live K/V + q + out), prefill in TFLOP/s (4 x Hq x head_dim x
// visible keys), and a device-to-device copy (read + write) gives the bandwidth ceiling.
//   usage: attention_cuda [repetitions] [case-name filter, '|'-separated] [L2 flush MiB, default 256]
//   (prints a table; writes no files). Each case sleeps 300 ms after its setup (see run_case).
//   Diagnostics (environment): PAGEDSERVE_BENCH_GRAPH, _IN_ORDER, _SETTLE_MS, _FRAGMENT, _REPEAT,
//   _TIMELINE, _VERBOSE, _KV=separate|pool|pool2m (see where each is read).
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "core/buffer.h"
#include "kernels/attention.h"
#include "kernels/cuda/attention_cuda.h"

namespace pagedserve {
namespace {

constexpr int kKvHeads = 8;
constexpr int kGroup = 4;
constexpr int kHeadDim = 128;

void ok(cudaError_t status, const char* what) {
  if (status != cudaSuccess) {
    std::fprintf(stderr, "%s: %s\n", what, cudaGetErrorString(status));
    std::exit(1);
  }
}

__global__ void fill_random(__nv_bfloat16* data, std::size_t n, std::uint32_t seed) {
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x) {
    std::uint32_t x = static_cast<std::uint32_t>(i) * 2654435761u ^ seed ^ static_cast<std::uint32_t>(i >> 32);
    x ^= x >> 15;
    x *= 2246822519u;
    x ^= x >> 13;
    x *= 3266489917u;
    x ^= x >> 16;
    data[i] = __float2bfloat16(static_cast<float>(x) * (2.0f / 4294967296.0f) - 1.0f);
  }
}

// Reads the whole buffer (the sum is stored only if impossible, so nothing is written): evicts
// the inputs from L2 without leaving dirty lines whose write-back the timed kernel would pay.
__global__ void read_all(const int4* data, std::size_t n, int* sink) {
  int acc = 0;
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x) {
    const int4 v = data[i];
    acc ^= v.x ^ v.y ^ v.z ^ v.w;
  }
  if (acc == 0x7fffffff) *sink = acc;
}

Buffer random_bf16(std::size_t count, std::uint32_t seed) {
  Buffer buffer(count * 2, Device::cuda);
  fill_random<<<1024, 256>>>(static_cast<__nv_bfloat16*>(buffer.data()), count, seed);
  ok(cudaGetLastError(), "fill_random");
  return buffer;
}

template <typename T>
Buffer upload(const std::vector<T>& host) {
  Buffer buffer(std::max<std::size_t>(host.size() * sizeof(T), 4), Device::cuda);
  copy_bytes(buffer.data(), Device::cuda, host.data(), Device::cpu, host.size() * sizeof(T));
  return buffer;
}

struct Row {
  int seq_len;
  int q_len;
};

// One metadata set (decode part or prefill part) of a step, on the device.
struct Part {
  int capacity = 0;
  int num_tokens = 0;
  int max_pages = 0;
  Buffer block_table, seq_lens, query_start_len, q, out;
  double live_kv_tokens = 0;  // sum of seq_len
  double visible_keys = 0;    // sum over query rows of keys seen
};

Part make_part(const std::vector<Row>& rows, int capacity, int page, int max_len, std::vector<int>& free_pages,
               std::mt19937& rng) {
  Part part;
  part.capacity = capacity;
  part.max_pages = (max_len + page - 1) / page;
  std::vector<int> table(static_cast<std::size_t>(capacity) * part.max_pages, -1);
  std::vector<int> seq_lens(capacity, 0);
  std::vector<int> qsl(capacity + 1, 0);
  for (int s = 0; s < capacity; ++s) {
    const Row row = s < static_cast<int>(rows.size()) ? rows[s] : Row{0, 0};
    seq_lens[s] = row.seq_len;
    qsl[s + 1] = qsl[s] + row.q_len;
    for (int p = 0; p < (row.seq_len + page - 1) / page; ++p) {
      table[static_cast<std::size_t>(s) * part.max_pages + p] = free_pages.back();
      free_pages.pop_back();
    }
    part.live_kv_tokens += row.seq_len;
    const int context = row.seq_len - row.q_len;
    for (int i = 0; i < row.q_len; ++i) part.visible_keys += context + i + 1;
  }
  (void)rng;
  part.num_tokens = std::max(qsl[capacity], 1);
  part.block_table = upload(table);
  part.seq_lens = upload(seq_lens);
  part.query_start_len = upload(qsl);
  const std::size_t q_elements = static_cast<std::size_t>(part.num_tokens) * kKvHeads * kGroup * kHeadDim;
  part.q = random_bf16(q_elements, 7u + static_cast<std::uint32_t>(capacity));
  part.out = Buffer(q_elements * 2, Device::cuda);
  return part;
}

PagedAttentionArgs args_for(const Part& part, void* k, void* v, int num_pages, int page) {
  PagedAttentionArgs a;
  a.q = TensorView(part.q.data(), DType::bf16, {part.num_tokens, kKvHeads, kGroup, kHeadDim}, Device::cuda);
  a.out = TensorView(part.out.data(), DType::bf16, {part.num_tokens, kKvHeads, kGroup, kHeadDim}, Device::cuda);
  a.k_cache = TensorView(k, DType::bf16, {num_pages, page, kKvHeads, kHeadDim}, Device::cuda);
  a.v_cache = TensorView(v, DType::bf16, {num_pages, page, kKvHeads, kHeadDim}, Device::cuda);
  a.block_table = TensorView(part.block_table.data(), DType::i32, {part.capacity, part.max_pages}, Device::cuda);
  a.seq_lens = TensorView(part.seq_lens.data(), DType::i32, {part.capacity}, Device::cuda);
  a.query_start_len = TensorView(part.query_start_len.data(), DType::i32, {part.capacity + 1}, Device::cuda);
  a.softmax_scale = 0.08838834764831845f;
  return a;
}

struct Case {
  std::string name;
  int page = 16;
  std::vector<Row> decode_rows;
  int decode_capacity = 0;
  std::vector<Row> prefill_rows;
  std::string unit;  // "TB/s", "TFLOP/s" or "us"
  double target = 0;
};

struct Timer {
  Buffer flush;
  cudaEvent_t start{}, stop{};
  explicit Timer(std::size_t flush_bytes) : flush(flush_bytes, Device::cuda) {
    if (flush_bytes > 0) ok(cudaMemset(flush.data(), 1, flush.nbytes()), "flush init");
    ok(cudaEventCreate(&start), "event");
    ok(cudaEventCreate(&stop), "event");
  }
  // Median microseconds of `reps` runs of fn, each after an L2 flush.
  template <typename Fn>
  double median_us(int reps, Fn&& fn) {
    for (int i = 0; i < 3; ++i) fn();
    std::vector<float> times;
    for (int i = 0; i < reps; ++i) {
      if (flush.nbytes() > 0) {  // 0 MiB: no flush (diagnostic)
        read_all<<<1024, 256>>>(static_cast<const int4*>(flush.data()), flush.nbytes() / 16,
                                static_cast<int*>(flush.data()));
        ok(cudaGetLastError(), "read_all");
      }
      ok(cudaEventRecord(start, nullptr), "record");
      fn();
      ok(cudaEventRecord(stop, nullptr), "record");
      ok(cudaEventSynchronize(stop), "sync");
      float ms = 0;
      ok(cudaEventElapsedTime(&ms, start, stop), "elapsed");
      times.push_back(ms * 1000.0f);
    }
    if (std::getenv("PAGEDSERVE_BENCH_TIMELINE") != nullptr) {  // diagnostic: every repetition, in order
      std::printf("  # reps (us):");
      for (float t : times) std::printf(" %.0f", t);
      std::printf("\n");
    }
    std::sort(times.begin(), times.end());
    return times[times.size() / 2];
  }
};

struct Result {
  double us, value;
};

// The K and V caches of a case. Default: two cudaMalloc buffers, as before. Diagnostics
// (PAGEDSERVE_BENCH_KV): "pool" = one allocation with V right after K, as kvcache/KVCache lays
// out a layer; "pool2m" = the same with V's offset rounded up to 2 MiB.
struct KvStorage {
  Buffer k_buffer, v_buffer, pool;
  void* k = nullptr;
  void* v = nullptr;
  explicit KvStorage(std::size_t elements) {
    const char* mode = std::getenv("PAGEDSERVE_BENCH_KV");
    const std::size_t bytes = elements * 2;
    if (mode == nullptr || std::string(mode) == "separate") {
      k_buffer = random_bf16(elements, 11);
      v_buffer = random_bf16(elements, 13);
      k = k_buffer.data();
      v = v_buffer.data();
    } else {
      const std::size_t align = std::string(mode) == "pool2m" ? (2u << 20) : 256;
      const std::size_t offset = (bytes + align - 1) / align * align;
      pool = Buffer(offset + bytes, Device::cuda);
      k = pool.data();
      v = static_cast<char*>(pool.data()) + offset;
      fill(k, elements, 11);
      fill(v, elements, 13);
    }
    if (std::getenv("PAGEDSERVE_BENCH_VERBOSE") != nullptr) {
      const auto mod2m = [](const void* p) { return static_cast<unsigned long>(reinterpret_cast<std::uintptr_t>(p) % (2u << 20)); };
      std::printf("  # kv %s: k %p (mod 2 MiB %lu) v %p (mod 2 MiB %lu), %zu MiB each\n", mode ? mode : "separate", k,
                  mod2m(k), v, mod2m(v), bytes >> 20);
    }
  }
  static void fill(void* data, std::size_t elements, std::uint32_t seed) {
    fill_random<<<1024, 256>>>(static_cast<__nv_bfloat16*>(data), elements, seed);
    ok(cudaGetLastError(), "fill_random");
  }
};

// Per-CTA timestamps of the last prefill launch, present only in binaries built with
// -DPAGEDSERVE_PREFILL_STAMPS (diagnostic variant); see prefill_attention_kernel.cuh for the row
// layout: smid, clock64 at entry / setup done / first tile ready / loop done / end, K/V tiles,
// globaltimer at entry / end.
extern "C" int pagedserve_prefill_stamps(unsigned long long* dst, int max_rows) __attribute__((weak));

void print_prefill_stamps() {
  if (pagedserve_prefill_stamps == nullptr) return;
  constexpr int kCols = 12;
  std::vector<unsigned long long> rows(8192 * kCols);
  const int n = pagedserve_prefill_stamps(rows.data(), 8192);
  struct Cta { unsigned sm; double entry, setup, ready, loop, end; int tiles; double g0, g1, q_issued, issued; };
  std::vector<Cta> ctas;
  for (int i = 0; i < n; ++i) {
    const unsigned long long* r = &rows[static_cast<std::size_t>(i) * kCols];
    if (r[6] == ~0ull || r[0] == ~0ull) continue;
    ctas.push_back({static_cast<unsigned>(r[0]), double(r[1]), double(r[2]), double(r[3]), double(r[4]), double(r[5]),
                    static_cast<int>(r[6]), double(r[7]), double(r[8]), double(r[9]), double(r[10])});
  }
  if (ctas.empty()) return;
  unsigned max_sm = 0;
  for (const Cta& c : ctas) max_sm = std::max(max_sm, c.sm);
  std::vector<std::vector<const Cta*>> by_sm(max_sm + 1);
  for (const Cta& c : ctas) by_sm[c.sm].push_back(&c);
  std::vector<double> ghz;
  double occupancy_sum = 0, gap_sum = 0;
  int occupancy_n = 0, gap_n = 0;
  double g_min = 1e300, g_max = 0;
  for (auto& list : by_sm) {
    if (list.empty()) continue;
    std::sort(list.begin(), list.end(), [](const Cta* a, const Cta* b) { return a->entry < b->entry; });
    double t0 = 1e300, t1 = 0, gt0 = 1e300, gt1 = 0, busy = 0;
    std::vector<double> slot_end;
    for (const Cta* c : list) {
      t0 = std::min(t0, c->entry); t1 = std::max(t1, c->end);
      gt0 = std::min(gt0, c->g0); gt1 = std::max(gt1, c->g1);
      busy += c->end - c->entry;
      if (slot_end.size() < 2) {
        slot_end.push_back(c->end);
      } else {  // the CTA takes the slot that freed first
        auto it = std::min_element(slot_end.begin(), slot_end.end());
        gap_sum += c->entry - *it;
        ++gap_n;
        *it = c->end;
      }
    }
    if (gt1 > gt0) ghz.push_back((t1 - t0) / (gt1 - gt0));
    occupancy_sum += busy / (2 * (t1 - t0));
    ++occupancy_n;
    g_min = std::min(g_min, gt0); g_max = std::max(g_max, gt1);
  }
  std::sort(ghz.begin(), ghz.end());
  const double f = ghz[ghz.size() / 2] * 1e3;  // cycles per microsecond
  double setup = 0, ramp = 0, epi = 0, q_issue = 0, kv_issue = 0, sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (const Cta& c : ctas) {
    setup += (c.setup - c.entry) / f; ramp += (c.ready - c.setup) / f; epi += (c.end - c.loop) / f;
    q_issue += (c.q_issued - c.setup) / f; kv_issue += (c.issued - c.q_issued) / f;
    const double x = c.tiles, y = (c.loop - c.ready) / f;
    sx += x; sy += y; sxx += x * x; sxy += x * y;
  }
  const double m = ctas.size();
  const double slope = (m * sxy - sx * sy) / (m * sxx - sx * sx);
  const double icpt = (sy - slope * sx) / m;
  std::printf("  # stamps: first tile wait = Q copies issued %.2f us + first K/V copies issued %.2f us + waiting %.2f us\n",
              q_issue / m, kv_issue / m, (ramp - q_issue - kv_issue) / m);
  std::printf("  # stamps: %zu CTAs, SM clock %.2f GHz, span %.1f us; per CTA: setup %.2f us, first tile wait %.2f us, "
              "loop %.3f us/tile + %.2f us, epilogue %.2f us; slot occupancy %.3f, mean gap before a CTA %.2f us\n",
              ctas.size(), f / 1e3, (g_max - g_min) / 1e3, setup / m, ramp / m, slope, icpt, epi / m,
              occupancy_sum / occupancy_n, gap_n ? gap_sum / gap_n / f : 0.0);
}

Result run_case(const Case& c, Timer& timer, int reps) {
  std::mt19937 rng(1234);
  int pages_needed = 0, max_len = 1;
  for (const auto* rows : {&c.decode_rows, &c.prefill_rows}) {
    for (const Row& r : *rows) {
      pages_needed += (r.seq_len + c.page - 1) / c.page;
      max_len = std::max(max_len, r.seq_len);
    }
  }
  const int num_pages = pages_needed + 8;
  std::vector<int> free_pages(num_pages);
  std::iota(free_pages.begin(), free_pages.end(), 0);
  // Permuted physical pages; PAGEDSERVE_BENCH_IN_ORDER=1 keeps them in order (diagnostic only).
  if (std::getenv("PAGEDSERVE_BENCH_IN_ORDER") == nullptr) std::shuffle(free_pages.begin(), free_pages.end(), rng);
  const std::size_t cache_elements = static_cast<std::size_t>(num_pages) * c.page * kKvHeads * kHeadDim;
  KvStorage kv(cache_elements);

  const bool has_decode = !c.decode_rows.empty();
  const bool has_prefill = !c.prefill_rows.empty();
  Part decode, prefill;
  PagedAttentionArgs decode_args, prefill_args;
  Buffer workspace;
  std::size_t workspace_bytes = 0;
  if (has_decode) {
    decode = make_part(c.decode_rows, std::max<int>(c.decode_capacity, c.decode_rows.size()), c.page, max_len, free_pages, rng);
    decode_args = args_for(decode, kv.k, kv.v, num_pages, c.page);
    workspace_bytes = decode_attention_cuda_workspace_bytes(decode_args);
    workspace = Buffer(workspace_bytes, Device::cuda);
  }
  if (has_prefill) {
    prefill = make_part(c.prefill_rows, c.prefill_rows.size(), c.page, max_len, free_pages, rng);
    prefill_args = args_for(prefill, kv.k, kv.v, num_pages, c.page);
  }
  ok(cudaDeviceSynchronize(), "setup");
  // Settle before timing. After a multi-GiB free (the copy's buffers, an earlier case's cache)
  // the next case's first ~15 repetitions ran ~12% slower and the rest at full speed, with the
  // same buffers (H200, 2026-11-22: 311 -> 274 us for decode B=64 L=4096 within one case); we
  // take it for the driver clearing freed memory in the background. A server allocates its cache
  // once, so the kernels are timed without that traffic. PAGEDSERVE_BENCH_SETTLE_MS=0 turns it off.
  const char* settle = std::getenv("PAGEDSERVE_BENCH_SETTLE_MS");
  std::this_thread::sleep_for(std::chrono::milliseconds(settle ? std::atoi(settle) : 300));
  auto step = [&](cudaStream_t stream) {
    if (has_decode) decode_attention_cuda(decode_args, workspace.data(), workspace_bytes, stream);
    if (has_prefill) prefill_attention_cuda(prefill_args, stream);
  };
  double us = 0;
  if (std::getenv("PAGEDSERVE_BENCH_GRAPH") != nullptr) {
    // Serving path: the step captured once, replays timed (no host work inside the window).
    cudaStream_t stream = nullptr;
    ok(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "stream");
    cudaGraph_t graph = nullptr;
    cudaGraphExec_t exec = nullptr;
    ok(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal), "capture");
    step(stream);
    ok(cudaStreamEndCapture(stream, &graph), "end capture");
    ok(cudaGraphInstantiate(&exec, graph, 0), "instantiate");
    us = timer.median_us(reps, [&] { ok(cudaGraphLaunch(exec, nullptr), "graph launch"); });
    ok(cudaDeviceSynchronize(), "graph");
    ok(cudaGraphExecDestroy(exec), "graph");
    ok(cudaGraphDestroy(graph), "graph");
    ok(cudaStreamDestroy(stream), "stream");
  } else {
    us = timer.median_us(reps, [&] { step(nullptr); });
  }
  ok(cudaDeviceSynchronize(), "run");
  if (has_prefill && !has_decode) print_prefill_stamps();
  Result result{us, us};
  const double row_bytes = 2.0 * kKvHeads * kGroup * kHeadDim;  // one token's q (or out), bf16
  if (c.unit == "TB/s") {
    const double bytes = decode.live_kv_tokens * 2 * kKvHeads * kHeadDim * 2 + 2 * decode.num_tokens * row_bytes;
    result.value = bytes / (us * 1e-6) / 1e12;
  } else if (c.unit == "TFLOP/s") {
    const double flops = 4.0 * kKvHeads * kGroup * kHeadDim * prefill.visible_keys;
    result.value = flops / (us * 1e-6) / 1e12;
  }
  return result;
}

// The filter is a list of substrings separated by '|'; empty matches everything.
bool matches(const std::string& name, const std::string& filter) {
  if (filter.empty()) return true;
  std::size_t begin = 0;
  while (true) {
    const std::size_t end = filter.find('|', begin);
    const std::string part = filter.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
    if (!part.empty() && name.find(part) != std::string::npos) return true;
    if (end == std::string::npos) return false;
    begin = end + 1;
  }
}

std::vector<Row> repeat(int n, Row row) { return std::vector<Row>(n, row); }

}  // namespace
}  // namespace pagedserve

int main(int argc, char** argv) {
  using namespace pagedserve;
  const int reps = argc > 1 ? std::atoi(argv[1]) : 30;
  const std::string filter = argc > 2 ? argv[2] : "";
  const std::size_t flush_mib = argc > 3 ? std::strtoul(argv[3], nullptr, 10) : 256;
  cudaDeviceProp prop{};
  ok(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");
  std::printf("device: %s, %d SMs, L2 %d MiB; GQA 32/8, head_dim 128, bf16, permuted pages; median of %d, "
              "L2 flushed by reading %zu MiB\n", prop.name, prop.multiProcessorCount, prop.l2CacheSize >> 20, reps, flush_mib);
  Timer timer(flush_mib << 20);
  // Diagnostics: PAGEDSERVE_BENCH_FRAGMENT=1 allocates and frees the copy's 2 x 2 GiB even when
  // the copy is filtered out; PAGEDSERVE_BENCH_REPEAT=n measures each case n times (fresh
  // allocations each time).
  if (!filter.empty() && std::getenv("PAGEDSERVE_BENCH_FRAGMENT") != nullptr) {
    Buffer a(2u << 30, Device::cuda), b(2u << 30, Device::cuda);
    ok(cudaMemcpy(b.data(), a.data(), 2u << 30, cudaMemcpyDeviceToDevice), "copy");
  }
  const int case_repeats = std::getenv("PAGEDSERVE_BENCH_REPEAT") ? std::max(1, std::atoi(std::getenv("PAGEDSERVE_BENCH_REPEAT"))) : 1;

  if (filter.empty()) {  // Bandwidth ceiling: device-to-device copy of 2 GiB, bytes read + written.
    const std::size_t bytes = 2u << 30;
    Buffer a(bytes, Device::cuda), b(bytes, Device::cuda);
    const double us = timer.median_us(reps, [&] {
      ok(cudaMemcpyAsync(b.data(), a.data(), bytes, cudaMemcpyDeviceToDevice, nullptr), "copy");
    });
    std::printf("%-44s %10.1f us %8.2f TB/s (read + write)\n", "device-to-device copy 2 GiB", us, 2.0 * bytes / (us * 1e-6) / 1e12);
  }

  std::vector<Case> cases = {
      {"decode B=64 L=4096", 16, repeat(64, {4096, 1}), 64, {}, "TB/s", 3.9},
      {"decode B=128 L=8192", 16, repeat(128, {8192, 1}), 128, {}, "TB/s", 3.9},
      {"decode B=256 L=1024", 16, repeat(256, {1024, 1}), 256, {}, "TB/s", 3.9},
      {"decode B=16 L=4096", 16, repeat(16, {4096, 1}), 16, {}, "TB/s", 3.0},
      {"decode B=4 L=16384", 16, repeat(4, {16384, 1}), 4, {}, "TB/s", 2.5},
      {"decode B=1 L=32768", 16, repeat(1, {32768, 1}), 1, {}, "TB/s", 2.5},
      {"decode 8 live L=4096, capacity 8", 16, repeat(8, {4096, 1}), 8, {}, "TB/s", 0},
      {"decode 8 live L=4096, capacity 256", 16, repeat(8, {4096, 1}), 256, {}, "TB/s", 0},
      {"decode B=64 L=4096 page 64", 64, repeat(64, {4096, 1}), 64, {}, "TB/s", 0},
      {"decode B=64 L=4096 page 32", 32, repeat(64, {4096, 1}), 64, {}, "TB/s", 0},
      {"prefill 1 x 8192 causal", 16, {}, 0, repeat(1, {8192, 8192}), "TFLOP/s", 300},
      {"prefill 4 x 2048 causal", 16, {}, 0, repeat(4, {2048, 2048}), "TFLOP/s", 300},
      {"mixed 16 x L=4096 decode + 2 x 1024 on 1024", 16, repeat(16, {4096, 1}), 16, repeat(2, {2048, 1024}), "us", 400},
      // Diagnostics (no target): how prefill throughput scales with sequence length.
      {"prefill 1 x 2048 causal", 16, {}, 0, repeat(1, {2048, 2048}), "TFLOP/s", 0},
      {"prefill 2 x 4096 causal", 16, {}, 0, repeat(2, {4096, 4096}), "TFLOP/s", 0},
      {"prefill 16 x 512 causal", 16, {}, 0, repeat(16, {512, 512}), "TFLOP/s", 0},
  };
  std::printf("%-44s %10s %14s %10s\n", "case", "time", "rate", "target");
  std::vector<Result> results;
  for (const Case& c : cases) {
    if (!matches(c.name, filter)) {
      results.push_back({1, 1});
      continue;
    }
    Result r{};
    for (int rep = 0; rep < case_repeats; ++rep) {
      r = run_case(c, timer, reps);
      if (rep + 1 < case_repeats) std::printf("%-44s %10.1f us %8.2f %-7s (repeat %d)\n", c.name.c_str(), r.us, r.value, c.unit.c_str(), rep + 1);
    }
    results.push_back(r);
    if (c.unit == "us") {
      std::printf("%-44s %10.1f us %14s %7.0f us  (%.2fx of budget)\n", c.name.c_str(), r.us, "", c.target, r.us / c.target);
    } else if (c.target > 0) {
      std::printf("%-44s %10.1f us %8.2f %-7s %5.1f %s (%.2fx)\n", c.name.c_str(), r.us, r.value, c.unit.c_str(), c.target,
                  c.unit.c_str(), r.value / c.target);
    } else {
      std::printf("%-44s %10.1f us %8.2f %-7s\n", c.name.c_str(), r.us, r.value, c.unit.c_str());
    }
  }
  std::printf("capacity 256 vs 8 (8 live rows): %+.1f%% (target <= +5%%)\n", 100.0 * (results[7].us / results[6].us - 1));
  std::printf("page 64 vs page 16 (B=64 L=4096): %+.1f%% (target <= +5%%)\n", 100.0 * (results[8].us / results[0].us - 1));
  return 0;
}
