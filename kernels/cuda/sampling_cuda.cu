// Token sampling on CUDA (sampling_cuda.h): one 1024-thread block per row, no host round trip.
//
// Per row:
//   1. Bias and penalties, only when a row has either. The row's workspace holds an int and a bit
//      per vocabulary id. Output ids are counted into the ints, prompt-only ids marked -1; the
//      thread that first sets an id's bit adds its bias, applies its penalty in place and parks
//      the raw logit in the id's int, so the raw log-softmax below still sees it. Bias ids are
//      claimed first, so an id that is also in the history gets both. Every float operation is
//      the CPU's, unfused.
//   2. One pass over the row: the raw log-sum-exp (online), the top-N raw logprobs (every warp
//      keeps a sorted list in its lanes, merged at the end), and the argmax and extremes of the
//      values the sampler works on (penalised logits, divided by temperature unless greedy).
//   3. Random rows: tokens are ordered by key = (value desc, id asc) and weighted by
//      e^(value - max) held as integers (x 2^40), so every sum is exact and independent of
//      thread timing. top_k, top_p and the draw each ask for a boundary: the last candidate in
//      key order whose count (or mass) before it is below a target. A histogram of the
//      candidates over 2048 value bins gives the boundary's bin; that bin's tokens are sorted in
//      shared memory (bitonic) and scanned. A bin too large to sort is first narrowed by 8-bit
//      radix passes over the key. The draw is u in [0, 1) from a hash of (seed, output_index)
//      times the kept mass, located by the same search, so its token depends on nothing else.
//      A score row skips 3: its token is given, and pass 2 also counts its rank.
#include "kernels/cuda/sampling_cuda.h"

#include <cuda_runtime.h>

#include <climits>
#include <cstdint>
#include <string>

#include "core/error.h"
#include "kernels/cuda/cuda_check.h"

namespace pagedserve {

namespace {

using cuda_detail::check_launch;
using u64 = unsigned long long;

constexpr int kThreads = 1024;
constexpr int kWarps = kThreads / 32;
constexpr int kUnroll = 8;                   // logits loaded per thread before any is used
constexpr int kBins = 2 * kThreads;          // value bins of the candidate histogram
constexpr int kSortCapacity = 2 * kThreads;  // keys one block sorts in shared memory
constexpr int kDigits = 256;                 // radix of the passes that narrow a large bin
constexpr unsigned kFullMask = 0xffffffffu;
constexpr int kNoId = INT_MAX;                  // "no token yet": ranks below every real one
constexpr float kGreedyTemperature = 1e-5f;     // Sampler::kGreedyTemperature
constexpr float kMinRelativeLogit = -87.0f;     // Sampler: weights below e^-87 are 0
constexpr float kMassScale = 1099511627776.0f;  // 2^40: a weight in (0, 1] as an integer
constexpr int kMaxVocab = 1 << 22;              // vocab x 2^40 fits in 64 bits with room

__device__ __forceinline__ float positive_infinity() { return __int_as_float(0x7f800000); }
__device__ __forceinline__ bool is_nan(float x) { return (__float_as_uint(x) & 0x7fffffffu) > 0x7f800000u; }
__device__ __forceinline__ bool is_finite(float x) {
  return (__float_as_uint(x) & 0x7fffffffu) < 0x7f800000u;
}

// a ranks before b: larger value, ties by lower id (the CPU's more_likely).
__device__ __forceinline__ bool ranks_before(float av, int ai, float bv, int bi) {
  return av > bv || (av == bv && ai < bi);
}

// Keys: the value's bits made order-preserving as unsigned (-0 counted as +0) in the high half,
// ~id in the low half, so a larger key ranks before. Real tokens have keys > 0 (even -inf).
__device__ __forceinline__ u64 make_key(float value, int id) {
  unsigned bits = __float_as_uint(value);
  if (bits == 0x80000000u) bits = 0;
  const unsigned ordered = (bits & 0x80000000u) ? ~bits : (bits | 0x80000000u);
  return (static_cast<u64>(ordered) << 32) | static_cast<u64>(~static_cast<unsigned>(id));
}
__device__ __forceinline__ float key_value(u64 key) {
  const unsigned ordered = static_cast<unsigned>(key >> 32);
  return __uint_as_float((ordered & 0x80000000u) ? (ordered & 0x7fffffffu) : ~ordered);
}
__device__ __forceinline__ int key_id(u64 key) { return static_cast<int>(~static_cast<unsigned>(key)); }

// Counter-based uniform in [0, 1): SplitMix64 finaliser over (seed, output_index).
__device__ __forceinline__ u64 mix64(u64 z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
__device__ __forceinline__ double uniform_draw(u64 seed, std::int32_t output_index) {
  const u64 stream = mix64(seed ^ 0x6a09e667f3bcc909ull);
  const u64 counter = static_cast<u64>(static_cast<std::uint32_t>(output_index)) + 1;
  const u64 bits = mix64(stream + counter * 0x9e3779b97f4a7c15ull);
  return static_cast<double>(bits >> 11) * 0x1.0p-53;
}

// Shared arrays of one histogram: a count and a 64-bit mass per bin, the mass kept as two 32-bit
// words (shared 64-bit atomics are CAS loops; a carry out of the low word goes to the high one).
struct Histogram {
  unsigned* count;
  unsigned* mass_low;
  unsigned* mass_high;

  __device__ void clear(int bins) const {
    for (int b = static_cast<int>(threadIdx.x); b < bins; b += kThreads)
      count[b] = mass_low[b] = mass_high[b] = 0;
  }
  __device__ u64 mass(int b) const { return (static_cast<u64>(mass_high[b]) << 32) | mass_low[b]; }
  __device__ void set(int b, unsigned n, u64 m) const {
    count[b] = n;
    mass_low[b] = static_cast<unsigned>(m);
    mass_high[b] = static_cast<unsigned>(m >> 32);
  }
  __device__ void atomic_add(int b, unsigned n, u64 m) const {
    atomicAdd(&count[b], n);
    const unsigned low = static_cast<unsigned>(m);
    const unsigned before = atomicAdd(&mass_low[b], low);
    const unsigned high = static_cast<unsigned>(m >> 32) + (before + low < before ? 1u : 0u);
    if (high != 0) atomicAdd(&mass_high[b], high);
  }
  // Every lane of the warp calls this; bin < 0 adds nothing. When all adding lanes share one bin
  // (ties, a peaked row) one lane adds the warp's total instead of 32 lanes queueing on one word.
  __device__ void warp_add(int bin, u64 m) const {
    const unsigned adding = __ballot_sync(kFullMask, bin >= 0);
    if (adding == 0) return;
    const int leader = __ffs(adding) - 1;
    const int first = __shfl_sync(kFullMask, bin, leader);
    if (__all_sync(kFullMask, bin < 0 || bin == first)) {
      u64 total = bin >= 0 ? m : 0;
#pragma unroll
      for (int offset = 16; offset > 0; offset >>= 1) total += __shfl_xor_sync(kFullMask, total, offset);
      if (static_cast<int>(threadIdx.x & 31) == leader)
        atomic_add(first, static_cast<unsigned>(__popc(adding)), total);
    } else if (bin >= 0) {
      atomic_add(bin, 1u, m);
    }
  }
};

struct SharedStorage {
  unsigned bin_count[kBins];
  unsigned bin_mass_low[kBins];
  unsigned bin_mass_high[kBins];
  unsigned digit_count[kDigits];
  unsigned digit_mass_low[kDigits];
  unsigned digit_mass_high[kDigits];
  union {
    u64 keys[kSortCapacity];  // the boundary bin's keys, sorted most likely first
    struct {
      float value[kWarps * kMaxSampleLogprobs];
      int id[kWarps * kMaxSampleLogprobs];
    } top;  // the warps' top-N lists, before the merge
  } group;
  unsigned scan_count[kWarps];
  u64 scan_mass[kWarps];
  u64 reduce_key[kWarps];
  float reduce_value[kWarps];
  float reduce_sum[kWarps];
  int boundary;
  unsigned boundary_count;
  u64 boundary_mass;
  int group_size;
};

// Calls visit(i, valid, logit) for every index of the row, kUnroll loads in flight per thread.
// Every thread runs the same number of iterations (invalid ones with valid == false), so warp
// collectives inside `visit` see full warps.
template <typename Visit>
__device__ __forceinline__ void for_each_logit(const float* row, int vocab, Visit&& visit) {
  for (int base = 0; base < vocab; base += kThreads * kUnroll) {
    float logit[kUnroll];
#pragma unroll
    for (int k = 0; k < kUnroll; ++k) {
      const int i = base + k * kThreads + static_cast<int>(threadIdx.x);
      logit[k] = i < vocab ? row[i] : 0.0f;
    }
#pragma unroll
    for (int k = 0; k < kUnroll; ++k) {
      const int i = base + k * kThreads + static_cast<int>(threadIdx.x);
      visit(i, i < vocab, logit[k]);
    }
  }
}

// The same value on every thread; scratch: [kWarps].
template <typename T, typename Op>
__device__ T block_reduce(T value, Op op, T* scratch) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1)
    value = op(value, __shfl_xor_sync(kFullMask, value, offset));
  if ((threadIdx.x & 31) == 0) scratch[threadIdx.x / 32] = value;
  __syncthreads();
  T result = scratch[0];
  for (int w = 1; w < kWarps; ++w) result = op(result, scratch[w]);
  __syncthreads();
  return result;
}

// Sums of (count, mass) over the threads before this one, in thread order.
__device__ void block_exclusive_scan(unsigned count, u64 mass, unsigned& count_before, u64& mass_before,
                                     SharedStorage& s) {
  const int lane = static_cast<int>(threadIdx.x & 31);
  const int warp = static_cast<int>(threadIdx.x / 32);
  unsigned count_inclusive = count;
  u64 mass_inclusive = mass;
#pragma unroll
  for (int offset = 1; offset < 32; offset <<= 1) {
    const unsigned c = __shfl_up_sync(kFullMask, count_inclusive, offset);
    const u64 m = __shfl_up_sync(kFullMask, mass_inclusive, offset);
    if (lane >= offset) {
      count_inclusive += c;
      mass_inclusive += m;
    }
  }
  if (lane == 31) {
    s.scan_count[warp] = count_inclusive;
    s.scan_mass[warp] = mass_inclusive;
  }
  __syncthreads();
  unsigned count_offset = 0;
  u64 mass_offset = 0;
  for (int w = 0; w < warp; ++w) {
    count_offset += s.scan_count[w];
    mass_offset += s.scan_mass[w];
  }
  count_before = count_offset + count_inclusive - count;
  mass_before = mass_offset + mass_inclusive - mass;
  __syncthreads();
}

struct Boundary {
  int position;  // -1: none
  unsigned count_before;
  u64 mass_before;
};

// Positions 0 .. n-1 (n <= 2 * kThreads) in key order, most likely first; thread t describes
// positions 2t and 2t+1 through at(position, count, mass, nonempty). Returns the last nonempty
// position whose count (or mass) before it is below `target`, with the count and mass before it.
template <typename At>
__device__ Boundary find_boundary(int n, At at, bool by_mass, u64 target, SharedStorage& s) {
  unsigned count[2] = {0, 0};
  u64 mass[2] = {0, 0};
  bool nonempty[2] = {false, false};
#pragma unroll
  for (int j = 0; j < 2; ++j) {
    const int position = 2 * static_cast<int>(threadIdx.x) + j;
    if (position < n) at(position, count[j], mass[j], nonempty[j]);
  }
  unsigned count_before = 0;
  u64 mass_before = 0;
  block_exclusive_scan(count[0] + count[1], mass[0] + mass[1], count_before, mass_before, s);
  if (threadIdx.x == 0) s.boundary = -1;
  __syncthreads();
  int mine = -1;
  unsigned mine_count = 0;
  u64 mine_mass = 0;
#pragma unroll
  for (int j = 0; j < 2; ++j) {
    const u64 before = by_mass ? mass_before : static_cast<u64>(count_before);
    if (nonempty[j] && before < target) {
      mine = 2 * static_cast<int>(threadIdx.x) + j;
      mine_count = count_before;
      mine_mass = mass_before;
    }
    count_before += count[j];
    mass_before += mass[j];
  }
  if (mine >= 0) atomicMax(&s.boundary, mine);
  __syncthreads();
  const int position = s.boundary;
  if (position >= 0 && position == mine) {
    s.boundary_count = mine_count;
    s.boundary_mass = mine_mass;
  }
  __syncthreads();
  const Boundary result{position, position >= 0 ? s.boundary_count : 0u,
                        position >= 0 ? s.boundary_mass : 0ull};
  __syncthreads();
  return result;
}

// Sorts keys[0, n) most likely first (n <= kSortCapacity); pads to a power of two with 0 keys.
__device__ void sort_keys_descending(u64* keys, int n) {
  int size = 1;
  while (size < n) size <<= 1;
  for (int i = n + static_cast<int>(threadIdx.x); i < size; i += kThreads) keys[i] = 0;
  __syncthreads();
  for (int k = 2; k <= size; k <<= 1) {
    for (int j = k >> 1; j > 0; j >>= 1) {
      for (int t = static_cast<int>(threadIdx.x); t < size / 2; t += kThreads) {
        const int i = 2 * t - (t & (j - 1));  // bit j clear; its partner is i + j
        const u64 a = keys[i];
        const u64 b = keys[i + j];
        const bool descending = (i & k) == 0;
        if (descending ? a < b : a > b) {
          keys[i] = b;
          keys[i + j] = a;
        }
      }
      __syncthreads();
    }
  }
}

// Keys of the tokens for which member(i, logit, key) holds, sorted into s.group.keys; returns how
// many (the callers know there are at most kSortCapacity).
template <typename Member>
__device__ int collect_sorted(const float* row, int vocab, Member&& member, SharedStorage& s) {
  if (threadIdx.x == 0) s.group_size = 0;
  __syncthreads();
  const int lane = static_cast<int>(threadIdx.x & 31);
  for_each_logit(row, vocab, [&](int i, bool valid, float logit) {
    u64 key = 0;
    const bool in = valid && member(i, logit, key);
    const unsigned in_mask = __ballot_sync(kFullMask, in);
    if (in_mask == 0) return;
    const int leader = __ffs(in_mask) - 1;
    int base = 0;
    if (lane == leader) base = atomicAdd(&s.group_size, __popc(in_mask));
    base = __shfl_sync(kFullMask, base, leader);
    const int slot = base + __popc(in_mask & ((1u << lane) - 1));
    if (in && slot < kSortCapacity) s.group.keys[slot] = key;
  });
  __syncthreads();
  const int n = min(s.group_size, kSortCapacity);
  __syncthreads();
  sort_keys_descending(s.group.keys, n);
  return n;
}

// A warp's top-N list: lane j < n holds the j-th most likely (value, id) offered so far;
// (threshold_value, threshold_id) is entry n - 1. Every lane calls offer(); lanes with
// `offered` propose (value, id).
struct WarpTopList {
  int n;
  float value = 0.0f;
  int id = kNoId;
  float threshold_value = 0.0f;
  int threshold_id = kNoId;

  __device__ explicit WarpTopList(int size) : n(size) { value = threshold_value = -positive_infinity(); }

  __device__ void offer(bool offered, float candidate_value, int candidate_id) {
    unsigned pending = __ballot_sync(
        kFullMask, offered && ranks_before(candidate_value, candidate_id, threshold_value, threshold_id));
    const int lane = static_cast<int>(threadIdx.x & 31);
    while (pending != 0) {
      const int source = __ffs(pending) - 1;
      pending &= pending - 1;
      const float v = __shfl_sync(kFullMask, candidate_value, source);
      const int i = __shfl_sync(kFullMask, candidate_id, source);
      if (!ranks_before(v, i, threshold_value, threshold_id)) continue;  // same answer on every lane
      const int position = __popc(__ballot_sync(kFullMask, lane < n && ranks_before(value, id, v, i)));
      const float shifted_value = __shfl_up_sync(kFullMask, value, 1);
      const int shifted_id = __shfl_up_sync(kFullMask, id, 1);
      if (lane == position) {
        value = v;
        id = i;
      } else if (lane > position) {
        value = shifted_value;
        id = shifted_id;
      }
      threshold_value = __shfl_sync(kFullMask, value, n - 1);
      threshold_id = __shfl_sync(kFullMask, id, n - 1);
    }
  }
};

// The CPU's apply_penalties, over the workspace ints `slots` [vocab] and bits `touched`. code:
// > 0 times in the output, -1 in the prompt only, 0 in neither (an id claimed for its bias alone).
__device__ float penalised(float raw, int code, const SamplingRowParams& p, bool repetition) {
  float v = raw;
  if (repetition && code != 0)
    v = v > 0.0f ? __fdiv_rn(v, p.repetition_penalty) : __fmul_rn(v, p.repetition_penalty);
  if (code > 0) {
    v = __fsub_rn(v, __fadd_rn(__fmul_rn(p.frequency_penalty, static_cast<float>(code)), p.presence_penalty));
  }
  return v;
}

// num_prompt and num_output are 0 when no penalty is on: then only the bias applies.
__device__ void apply_bias_and_penalties(float* row, int vocab, const SamplingRowParams& p, bool repetition,
                                         const SamplingLogitBias* bias, int num_bias,
                                         const std::int32_t* prompt, int num_prompt,
                                         const std::int32_t* output, int num_output, int* slots,
                                         unsigned* touched) {
  const int tid = static_cast<int>(threadIdx.x);
  const int words = (vocab + 31) / 32;
  const int prompt_ids = repetition ? num_prompt : 0;  // the prompt only matters to repetition
  for (int w = tid; w < words; w += kThreads) touched[w] = 0;
  for (int j = tid; j < num_bias; j += kThreads) {
    const int id = bias[j].token;
    if (id >= 0 && id < vocab) slots[id] = 0;
  }
  for (int j = tid; j < num_output; j += kThreads) {
    const int id = output[j];
    if (id >= 0 && id < vocab) slots[id] = 0;
  }
  for (int j = tid; j < prompt_ids; j += kThreads) {
    const int id = prompt[j];
    if (id >= 0 && id < vocab) slots[id] = 0;
  }
  __syncthreads();
  for (int j = tid; j < num_output; j += kThreads) {
    const int id = output[j];
    if (id >= 0 && id < vocab) atomicAdd(&slots[id], 1);
  }
  __syncthreads();
  for (int j = tid; j < prompt_ids; j += kThreads) {
    const int id = prompt[j];
    if (id >= 0 && id < vocab) atomicCAS(&slots[id], 0, -1);  // -1: in the prompt only
  }
  __syncthreads();
  // Each id once: whoever sets its bit first owns it. Nobody else reads its int from here on.
  const auto claim = [&](int id, bool biased, float add) {
    if (id < 0 || id >= vocab) return;
    const unsigned bit = 1u << (id & 31);
    if (atomicOr(&touched[id >> 5], bit) & bit) return;
    const float raw = row[id];
    row[id] = penalised(biased ? __fadd_rn(raw, add) : raw, slots[id], p, repetition);
    slots[id] = __float_as_int(raw);
  };
  for (int j = tid; j < num_bias; j += kThreads) claim(bias[j].token, true, bias[j].bias);
  __syncthreads();  // the history's claims below skip the bias ids, already done with their bias
  for (int j = tid; j < num_output; j += kThreads) claim(output[j], false, 0.0f);
  for (int j = tid; j < prompt_ids; j += kThreads) claim(prompt[j], false, 0.0f);
  __syncthreads();
}

// What random sampling needs to know about one token from its (penalised) logit.
struct Candidates {
  float inv_temperature;
  float max_value;  // of value(), finite
  float min_p;
  float bin_scale;

  __device__ float value(float logit) const { return __fmul_rn(logit, inv_temperature); }
  // e^(value - max), 0 below e^-87 and for NaN, as the CPU's relative weights.
  __device__ float weight(float v) const {
    const float d = __fsub_rn(v, max_value);
    return d >= kMinRelativeLogit ? __expf(d) : 0.0f;
  }
  __device__ bool admits(float w) const { return w > 0.0f && w >= min_p; }  // min_p: p >= min_p * p_max
  // Monotone in the value: bin 0 holds the most likely. Bins are only a search aid.
  __device__ int bin(float v) const {
    const float f = __fmul_rn(__fsub_rn(max_value, v), bin_scale);
    return f < static_cast<float>(kBins - 1) ? static_cast<int>(f) : kBins - 1;
  }
  __device__ static u64 fixed_mass(float w) { return __float2ull_rn(w * kMassScale); }
  __device__ u64 mass_of_key(u64 key) const { return fixed_mass(weight(key_value(key))); }
};

struct Selected {
  int bin;  // -1: nothing found (cannot happen with a positive target; callers stay safe)
  u64 key;
  unsigned kept_count;  // in `bin`, the boundary token included
  u64 kept_mass;
};

// The last candidate with key >= threshold (and, for a draw, positive mass) whose count or mass
// before it, in key order, is below target. s.bin_* holds the histogram of exactly those
// candidates; s.group.keys holds the sorted candidates of bin `sorted_bin` (key >= some older,
// lower threshold), which is reused when the boundary falls in that bin again.
__device__ Selected select_boundary(const float* row, int vocab, const Candidates& c, u64 threshold,
                                    bool by_mass, bool draw, u64 target, int& sorted_bin, int& group_size,
                                    SharedStorage& s) {
  const Histogram bins{s.bin_count, s.bin_mass_low, s.bin_mass_high};
  const Boundary in_bins = find_boundary(
      kBins,
      [&](int position, unsigned& count, u64& mass, bool& nonempty) {
        count = bins.count[position];
        mass = bins.mass(position);
        nonempty = draw ? mass > 0 : count > 0;
      },
      by_mass, target, s);
  if (in_bins.position < 0) return {-1, 0, 0, 0};
  const int bin = in_bins.position;
  const u64 goal = target - (by_mass ? in_bins.mass_before : static_cast<u64>(in_bins.count_before));
  unsigned above_count = 0;  // candidates of `bin` outside the sorted group that rank before it
  u64 above_mass = 0;

  if (bin != sorted_bin) {
    u64 prefix = 0;  // the sorted group: candidates of `bin` whose key matches prefix under prefix_mask
    u64 prefix_mask = 0;
    const auto member = [&](int i, float logit, u64& key) {
      const float v = c.value(logit);
      if (c.bin(v) != bin || !c.admits(c.weight(v))) return false;
      key = make_key(v, i);
      return key >= threshold && (key & prefix_mask) == prefix;
    };
    unsigned size = bins.count[bin];
    if (size > static_cast<unsigned>(kSortCapacity)) {
      // Too many to sort: fix the key's bits from the first one where the bin's keys differ,
      // 8 at a time, following the boundary, until its group fits.
      u64 lowest = ~0ull;
      u64 highest = 0;
      for_each_logit(row, vocab, [&](int i, bool valid, float logit) {
        u64 key = 0;
        if (valid && member(i, logit, key)) {
          lowest = min(lowest, key);
          highest = max(highest, key);
        }
      });
      lowest = block_reduce(
          lowest, [](u64 a, u64 b) { return min(a, b); }, s.reduce_key);
      highest = block_reduce(
          highest, [](u64 a, u64 b) { return max(a, b); }, s.reduce_key);
      const u64 differ = lowest ^ highest;
      const int top = differ != 0 ? 63 - __clzll(static_cast<long long>(differ)) : 0;
      prefix_mask = top == 63 ? 0 : ~0ull << (top + 1);
      prefix = highest & prefix_mask;
      int shift = top >= 7 ? top - 7 : 0;
      const Histogram digits{s.digit_count, s.digit_mass_low, s.digit_mass_high};
      while (size > static_cast<unsigned>(kSortCapacity)) {
        digits.clear(kDigits);
        __syncthreads();
        for_each_logit(row, vocab, [&](int i, bool valid, float logit) {
          u64 key = 0;
          const bool in = valid && member(i, logit, key);
          digits.warp_add(in ? static_cast<int>((key >> shift) & (kDigits - 1)) : -1,
                          in ? c.mass_of_key(key) : 0);
        });
        __syncthreads();
        const Boundary in_digits = find_boundary(
            kDigits,
            [&](int position, unsigned& count, u64& mass, bool& nonempty) {
              const int digit = kDigits - 1 - position;  // larger digits rank first
              count = digits.count[digit];
              mass = digits.mass(digit);
              nonempty = draw ? mass > 0 : count > 0;
            },
            by_mass, goal - (by_mass ? above_mass : static_cast<u64>(above_count)), s);
        if (in_digits.position < 0) return {-1, 0, 0, 0};
        const int digit = kDigits - 1 - in_digits.position;
        above_count += in_digits.count_before;
        above_mass += in_digits.mass_before;
        prefix |= static_cast<u64>(digit) << shift;
        prefix_mask |= static_cast<u64>(kDigits - 1) << shift;
        size = digits.count[digit];
        shift = shift >= 8 ? shift - 8 : 0;  // overlapping bits are already fixed: harmless
        __syncthreads();                     // digits.count read before the next clear
      }
    }
    group_size = collect_sorted(row, vocab, member, s);
    sorted_bin = prefix_mask == 0 ? bin : -1;  // a narrowed group is not the whole bin
  }

  const Boundary in_group = find_boundary(
      group_size,
      [&](int position, unsigned& count, u64& mass, bool& nonempty) {
        const u64 key = s.group.keys[position];
        const u64 m = c.mass_of_key(key);
        nonempty = key >= threshold && (!draw || m > 0);
        count = nonempty ? 1u : 0u;
        mass = nonempty ? m : 0;
      },
      by_mass, goal - (by_mass ? above_mass : static_cast<u64>(above_count)), s);
  if (in_group.position < 0) return {-1, 0, 0, 0};
  const u64 key = s.group.keys[in_group.position];
  return {bin, key, above_count + in_group.count_before + 1,
          above_mass + in_group.mass_before + c.mass_of_key(key)};
}

// Keeps the candidates up to `kept` (key order): later bins emptied, its bin cut to the kept part.
__device__ void keep_through(const Selected& kept, SharedStorage& s) {
  const Histogram bins{s.bin_count, s.bin_mass_low, s.bin_mass_high};
  for (int b = static_cast<int>(threadIdx.x); b < kBins; b += kThreads) {
    if (b > kept.bin) bins.set(b, 0, 0);
    if (b == kept.bin) bins.set(b, kept.kept_count, kept.kept_mass);
  }
  __syncthreads();
}

__device__ void histogram_totals(SharedStorage& s, u64& count, u64& mass) {
  const Histogram bins{s.bin_count, s.bin_mass_low, s.bin_mass_high};
  const int b = 2 * static_cast<int>(threadIdx.x);
  const auto sum = [](u64 a, u64 x) { return a + x; };
  count = block_reduce(static_cast<u64>(bins.count[b]) + bins.count[b + 1], sum, s.reduce_key);
  mass = block_reduce(bins.mass(b) + bins.mass(b + 1), sum, s.reduce_key);
}

// Random sampling over finite values: min_p, top_k, top_p, then the draw.
__device__ int sample_random(const float* row, int vocab, const SamplingRowParams& p, const Candidates& c,
                             SharedStorage& s) {
  const Histogram bins{s.bin_count, s.bin_mass_low, s.bin_mass_high};
  bins.clear(kBins);
  __syncthreads();
  for_each_logit(row, vocab, [&](int, bool valid, float logit) {
    const float v = c.value(logit);
    const float w = c.weight(v);
    const bool in = valid && c.admits(w);
    bins.warp_add(in ? c.bin(v) : -1, Candidates::fixed_mass(w));
  });
  __syncthreads();

  u64 threshold = 0;  // every real key is above it
  int sorted_bin = -1;
  int group_size = 0;
  u64 total_count = 0;
  u64 total_mass = 0;
  histogram_totals(s, total_count, total_mass);
  if (p.top_k > 0 && static_cast<u64>(p.top_k) < total_count) {
    const Selected kept = select_boundary(row, vocab, c, threshold, /*by_mass=*/false, /*draw=*/false,
                                          static_cast<u64>(p.top_k), sorted_bin, group_size, s);
    if (kept.bin >= 0) {
      threshold = kept.key;
      keep_through(kept, s);
      histogram_totals(s, total_count, total_mass);
    }
  }
  if (p.top_p < 1.0f) {
    // Kept while the mass before it is below top_p x total, i.e. below the ceiling (integers).
    const u64 target = static_cast<u64>(ceil(static_cast<double>(p.top_p) * static_cast<double>(total_mass)));
    const Selected kept = select_boundary(row, vocab, c, threshold, /*by_mass=*/true, /*draw=*/false, target,
                                          sorted_bin, group_size, s);
    if (kept.bin >= 0) {
      threshold = kept.key;
      keep_through(kept, s);
      histogram_totals(s, total_count, total_mass);
    }
  }
  // The drawn token covers [mass before it, + its mass) of the kept mass: the last one (key
  // order, positive mass) whose mass before it is at most the point.
  if (total_mass == 0) return -1;  // cannot happen: the most likely candidate weighs 2^40
  u64 point = static_cast<u64>(uniform_draw(p.seed, p.output_index) * static_cast<double>(total_mass));
  if (point >= total_mass) point = total_mass - 1;
  const Selected drawn = select_boundary(row, vocab, c, threshold, /*by_mass=*/true, /*draw=*/true, point + 1,
                                         sorted_bin, group_size, s);
  return drawn.bin >= 0 ? key_id(drawn.key) : -1;
}

__global__ void __launch_bounds__(kThreads, 1)
    sample_tokens_kernel(float* logits, const SamplingRowParams* rows, const std::int32_t* history,
                         const SamplingLogitBias* bias, int vocab, unsigned char* workspace,
                         std::size_t row_workspace_bytes, SampledTokenRow* out) {
  __shared__ SharedStorage s;
  const int row_index = static_cast<int>(blockIdx.x);
  const int lane = static_cast<int>(threadIdx.x & 31);
  const int warp = static_cast<int>(threadIdx.x / 32);
  const SamplingRowParams p = rows[row_index];
  float* row = logits + static_cast<std::size_t>(row_index) * static_cast<std::size_t>(vocab);
  int* slots = reinterpret_cast<int*>(workspace + static_cast<std::size_t>(row_index) * row_workspace_bytes);
  unsigned* touched = reinterpret_cast<unsigned*>(slots + vocab);

  // 1. Bias and penalties.
  const bool repetition = p.repetition_penalty != 1.0f;
  const bool additive = p.frequency_penalty != 0.0f || p.presence_penalty != 0.0f;
  const int num_prompt = max(p.num_prompt, 0);
  const int num_output = max(p.num_output, 0);
  const int num_bias = bias != nullptr ? max(p.num_bias, 0) : 0;
  const bool penalised =
      (repetition || additive) && history != nullptr && (num_output > 0 || (repetition && num_prompt > 0));
  const bool modified = penalised || num_bias > 0;
  if (modified) {
    const std::int32_t* prompt = penalised ? history + p.history_begin : nullptr;
    apply_bias_and_penalties(row, vocab, p, penalised && repetition, bias + (num_bias > 0 ? p.bias_begin : 0),
                             num_bias, prompt, penalised ? num_prompt : 0,
                             penalised ? prompt + num_prompt : nullptr, penalised ? num_output : 0, slots,
                             touched);
  }
  const auto raw_logit = [&](int i, float logit) {
    return modified && ((touched[i >> 5] >> (i & 31)) & 1u) ? __int_as_float(slots[i]) : logit;
  };
  // A score row: the raw logit its rank is counted against.
  const bool scoring = p.score_token >= 0 && p.score_token < vocab;
  const float score_raw = scoring ? raw_logit(p.score_token, row[p.score_token]) : 0.0f;
  unsigned rank = 0;  // this thread's ids with raw >= score_raw

  // 2. Raw log-sum-exp, top-N raw logprobs, argmax and smallest finite of the working values.
  const bool greedy = p.temperature < kGreedyTemperature;
  const float inv_temperature = greedy ? 1.0f : __fdiv_rn(1.0f, p.temperature);
  const int num_top = min(max(p.num_logprobs, 0), kMaxSampleLogprobs);
  float raw_max = -positive_infinity();  // of the finite raw logits
  float raw_sum = 0.0f;                  // of e^(raw - raw_max)
  bool raw_positive_infinity = false;
  float best_value = -positive_infinity();
  int best_id = kNoId;
  float min_value = positive_infinity();
  WarpTopList top(max(num_top, 1));
  for_each_logit(row, vocab, [&](int i, bool valid, float logit) {
    const float raw = valid ? raw_logit(i, logit) : 0.0f;
    if (valid && is_finite(raw)) {
      if (raw > raw_max) {
        raw_sum = raw_sum * __expf(raw_max - raw) + 1.0f;
        raw_max = raw;
      } else {
        raw_sum += __expf(raw - raw_max);
      }
    } else if (valid && raw > 0.0f) {
      raw_positive_infinity = true;
    }
    if (num_top > 0) top.offer(valid && !is_nan(raw), raw, i);
    if (scoring && valid && raw >= score_raw) ++rank;  // NaN never
    const float v = greedy ? logit : __fmul_rn(logit, inv_temperature);
    if (valid && (v > best_value || (best_id == kNoId && v == best_value))) {  // NaN never
      best_value = v;
      best_id = i;
    }
    if (valid && is_finite(v)) min_value = fminf(min_value, v);
  });
  const u64 best_key = block_reduce(
      best_id == kNoId ? 0ull : make_key(best_value, best_id), [](u64 a, u64 b) { return max(a, b); },
      s.reduce_key);
  min_value = block_reduce(
      min_value, [](float a, float b) { return fminf(a, b); }, s.reduce_value);
  if (scoring)
    rank = block_reduce(
        rank, [](unsigned a, unsigned b) { return a + b; }, s.scan_count);
  raw_positive_infinity = __syncthreads_or(raw_positive_infinity) != 0;
  {
    const auto combine = [](float& m, float& sum, float other_m, float other_sum) {
      const float top_m = fmaxf(m, other_m);
      sum = top_m == -positive_infinity() ? 0.0f
                                          : sum * __expf(m - top_m) + other_sum * __expf(other_m - top_m);
      m = top_m;
    };
#pragma unroll
    for (int offset = 16; offset > 0; offset >>= 1) {
      combine(raw_max, raw_sum, __shfl_xor_sync(kFullMask, raw_max, offset),
              __shfl_xor_sync(kFullMask, raw_sum, offset));
    }
    if (lane == 0) {
      s.reduce_value[warp] = raw_max;
      s.reduce_sum[warp] = raw_sum;
    }
    __syncthreads();
    raw_max = s.reduce_value[0];
    raw_sum = s.reduce_sum[0];
    for (int w = 1; w < kWarps; ++w) combine(raw_max, raw_sum, s.reduce_value[w], s.reduce_sum[w]);
    __syncthreads();
  }
  // The CPU's: an infinite logit takes all the mass; nothing finite: -inf.
  const float lse = raw_positive_infinity             ? positive_infinity()
                    : raw_max == -positive_infinity() ? -positive_infinity()
                                                      : raw_max + __logf(raw_sum);

  SampledTokenRow& result = out[row_index];
  if (num_top > 0) {
    if (lane < num_top) {
      s.group.top.value[warp * num_top + lane] = top.value;
      s.group.top.id[warp * num_top + lane] = top.id;
    }
    __syncthreads();
    if (warp == 0) {
      WarpTopList merged(num_top);
      for (int base = 0; base < kWarps * num_top; base += 32) {
        const int j = base + lane;
        const bool offered = j < kWarps * num_top && s.group.top.id[j] != kNoId;
        merged.offer(offered, offered ? s.group.top.value[j] : 0.0f, offered ? s.group.top.id[j] : kNoId);
      }
      if (lane < kMaxSampleLogprobs) {
        const bool real = lane < num_top && merged.id != kNoId;
        result.top_ids[lane] = real ? merged.id : -1;
        result.top_logprobs[lane] = real ? merged.value - lse : -positive_infinity();
      }
    }
    __syncthreads();  // s.group is reused below
  } else if (warp == 0 && lane < kMaxSampleLogprobs) {
    result.top_ids[lane] = -1;
    result.top_logprobs[lane] = -positive_infinity();
  }

  // 3. The token. Greedy, or no proper distribution (nothing finite, or an infinite value):
  // the argmax of the working values, lowest id on ties, 0 when all are NaN.
  int token = scoring ? p.score_token : best_key == 0 ? 0 : key_id(best_key);
  const float max_value = key_value(best_key);
  if (!scoring && !greedy && best_key != 0 && is_finite(max_value)) {
    float range = fminf(__fsub_rn(max_value, min_value), -kMinRelativeLogit + 1.0f);
    if (p.min_p > 0.0f) range = fminf(range, -__logf(p.min_p) + 0.01f);  // finer bins; any range is correct
    const Candidates c{inv_temperature, max_value, p.min_p, static_cast<float>(kBins) / fmaxf(range, 1e-6f)};
    const int drawn = sample_random(row, vocab, p, c, s);
    if (drawn >= 0) token = drawn;
  }
  if (threadIdx.x == 0) {
    result.token = token;
    result.logprob = raw_logit(token, row[token]) - lse;
    result.rank = scoring ? static_cast<std::int32_t>(rank) : 0;
  }
}

std::size_t row_workspace_bytes(int vocab) {
  const std::size_t bytes = static_cast<std::size_t>(vocab) * sizeof(int) +
                            static_cast<std::size_t>((vocab + 31) / 32) * sizeof(unsigned);
  return (bytes + 255) / 256 * 256;
}

void require(bool condition, const std::string& reason) {
  if (!condition) throw SetupError("cuda sampling", reason);
}

}  // namespace

std::size_t sample_tokens_cuda_workspace_bytes(int max_rows, int vocab) {
  if (max_rows <= 0 || vocab <= 0) return 0;
  return static_cast<std::size_t>(max_rows) * row_workspace_bytes(vocab);
}

void sample_tokens_cuda(float* logits, const SamplingRowParams* rows, const std::int32_t* history,
                        const SamplingLogitBias* bias, int num_rows, int vocab, void* workspace,
                        std::size_t workspace_bytes, SampledTokenRow* out, CudaStream stream) {
  require(num_rows >= 0, "num_rows must be >= 0");
  if (num_rows == 0) return;
  require(vocab > 0 && vocab <= kMaxVocab, "vocab must be in [1, " + std::to_string(kMaxVocab) + "]");
  require(logits != nullptr && rows != nullptr && out != nullptr, "logits, rows and out must be set");
  require(workspace != nullptr && workspace_bytes >= sample_tokens_cuda_workspace_bytes(num_rows, vocab),
          "workspace smaller than sample_tokens_cuda_workspace_bytes(num_rows, vocab)");
  sample_tokens_kernel<<<num_rows, kThreads, 0, stream>>>(logits, rows, history, bias, vocab,
                                                          static_cast<unsigned char*>(workspace),
                                                          row_workspace_bytes(vocab), out);
  check_launch("sample_tokens_kernel");
}

}  // namespace pagedserve
