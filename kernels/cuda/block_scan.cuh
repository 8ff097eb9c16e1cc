// Block-wide helpers the attention kernels use to turn device metadata (seq_lens,
// query_start_len) into a work list without a host round trip. Device code only; every thread
// of the block must call them (they synchronise).
#pragma once

namespace pagedserve::cuda_detail {

// prefix[i] = sum of units(j) for j < i, for i in [0, n]; prefix lives in shared memory.
// `warp_totals` is shared scratch of at least kThreads / 32 ints.
template <int kThreads, typename Units>
__device__ void block_exclusive_scan(int n, Units units, int* prefix, int* warp_totals) {
  constexpr int kWarps = kThreads / 32;
  const int lane = threadIdx.x % 32;
  const int warp = threadIdx.x / 32;
  int carry = 0;
  for (int base = 0; base < n; base += kThreads) {
    const int i = base + static_cast<int>(threadIdx.x);
    const int value = i < n ? units(i) : 0;
    int inclusive = value;
#pragma unroll
    for (int offset = 1; offset < 32; offset <<= 1) {
      const int other = __shfl_up_sync(0xffffffffu, inclusive, offset);
      if (lane >= offset) inclusive += other;
    }
    if (lane == 31) warp_totals[warp] = inclusive;
    __syncthreads();
    int warp_offset = 0;
    int block_total = 0;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) {
      const int total = warp_totals[w];
      if (w < warp) warp_offset += total;
      block_total += total;
    }
    if (i < n) prefix[i] = carry + warp_offset + inclusive - value;
    carry += block_total;
    __syncthreads();  // warp_totals is reused by the next round
  }
  if (threadIdx.x == 0) prefix[n] = carry;
  __syncthreads();
}

// Sum over the block of one long long per thread; the result is returned to every thread.
template <int kThreads>
__device__ long long block_sum(long long value, long long* scratch) {
  constexpr int kWarps = kThreads / 32;
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) value += __shfl_xor_sync(0xffffffffu, value, offset);
  if (threadIdx.x % 32 == 0) scratch[threadIdx.x / 32] = value;
  __syncthreads();
  long long total = 0;
#pragma unroll
  for (int w = 0; w < kWarps; ++w) total += scratch[w];
  __syncthreads();
  return total;
}

// Index s in [0, n) with prefix[s] <= unit < prefix[s + 1] (prefix non-decreasing, prefix[n] > unit).
__device__ inline int find_row(const int* prefix, int n, int unit) {
  int low = 0;
  int high = n;  // invariant: prefix[low] <= unit < prefix[high]
  while (high - low > 1) {
    const int mid = (low + high) / 2;
    if (prefix[mid] <= unit) {
      low = mid;
    } else {
      high = mid;
    }
  }
  return low;
}

}  // namespace pagedserve::cuda_detail
