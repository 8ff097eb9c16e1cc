// Host side of the CUDA paged attention: checks the views, unpacks them into AttentionParams,
// sizes the launches from shapes only, and dispatches on dtype and head_dim.
#include "kernels/cuda/attention_cuda.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <string>

#include "core/error.h"
#include "kernels/cuda/attention_launch.cuh"
#include "kernels/cuda/cuda_check.h"

namespace pagedserve {

namespace {

using cuda_detail::AttentionParams;
using cuda_detail::check_cuda;

void require(bool condition, const std::string& reason) {
  if (!condition) throw SetupError("cuda paged attention", reason);
}

struct Shapes {
  int num_tokens, num_kv_heads, heads_per_kv, head_dim, page_size, capacity, max_pages;
};

Shapes check_args(const PagedAttentionArgs& a, int max_group) {
  require(a.q.rank() == 4 && a.out.rank() == 4, "q and out must be [num_tokens, num_kv_heads, heads_per_kv, head_dim]");
  require(a.k_cache.rank() == 4 && a.v_cache.rank() == 4, "k/v cache must be [num_pages, page_size, num_kv_heads, head_dim]");
  require(a.block_table.rank() == 2 && a.seq_lens.rank() == 1 && a.query_start_len.rank() == 1,
          "block_table [capacity, max_pages], seq_lens [capacity], query_start_len [capacity + 1]");
  for (const TensorView* view : {&a.q, &a.k_cache, &a.v_cache, &a.out, &a.block_table, &a.seq_lens, &a.query_start_len}) {
    require(view->device() == Device::cuda, "every view must be on the CUDA device");
    require(view->is_contiguous(), "every view must be contiguous");
  }
  // The kernels copy 16-byte vectors of q/k/v and store 4-byte pairs of out.
  for (const TensorView* view : {&a.q, &a.k_cache, &a.v_cache, &a.out}) {
    require(reinterpret_cast<std::uintptr_t>(view->data()) % 16 == 0, "q, k/v cache and out must be 16-byte aligned");
  }
  const DType dtype = a.q.dtype();
  require(dtype == DType::bf16 || dtype == DType::f16, "dtype must be bf16 or f16");
  require(a.k_cache.dtype() == dtype && a.v_cache.dtype() == dtype && a.out.dtype() == dtype,
          "q, k_cache, v_cache and out must share one dtype");
  require(a.block_table.dtype() == DType::i32 && a.seq_lens.dtype() == DType::i32 &&
              a.query_start_len.dtype() == DType::i32,
          "metadata must be i32");
  require(a.sliding_window == 0 && a.logit_softcap == 0.0f, "sliding_window and logit_softcap are not supported");
  // The prefill loop takes row maxima on unscaled scores, which needs a positive scale.
  require(a.softmax_scale > 0.0f && std::isfinite(a.softmax_scale), "softmax_scale must be positive and finite");
  Shapes s{};
  s.num_tokens = static_cast<int>(a.q.size(0));
  s.num_kv_heads = static_cast<int>(a.q.size(1));
  s.heads_per_kv = static_cast<int>(a.q.size(2));
  s.head_dim = static_cast<int>(a.q.size(3));
  s.page_size = static_cast<int>(a.k_cache.size(1));
  s.capacity = static_cast<int>(a.seq_lens.size(0));
  s.max_pages = static_cast<int>(a.block_table.size(1));
  for (int d = 0; d < 4; ++d) require(a.out.size(d) == a.q.size(d), "out must have q's shape");
  for (int d = 0; d < 4; ++d) require(a.v_cache.size(d) == a.k_cache.size(d), "v_cache must have k_cache's shape");
  require(a.k_cache.size(2) == s.num_kv_heads && a.k_cache.size(3) == s.head_dim, "cache heads/head_dim differ from q's");
  require(a.block_table.size(0) == s.capacity && a.query_start_len.size(0) == s.capacity + 1,
          "block_table and query_start_len must match seq_lens' capacity");
  require(s.head_dim == 64 || s.head_dim == 80 || s.head_dim == 96 || s.head_dim == 128 || s.head_dim == 256,
          "head_dim " + std::to_string(s.head_dim) + " unsupported (64, 80, 96, 128, 256)");
  require(s.page_size > 0 && std::has_single_bit(static_cast<unsigned>(s.page_size)), "page_size must be a power of two");
  require(s.heads_per_kv >= 1 && s.heads_per_kv <= max_group,
          "heads_per_kv must be in [1, " + std::to_string(max_group) + "]");
  require(s.capacity >= 1 && s.capacity <= 16384, "batch capacity must be in [1, 16384]");
  return s;
}

AttentionParams make_params(const PagedAttentionArgs& a, const Shapes& s) {
  AttentionParams p{};
  p.q = a.q.data();
  p.k_cache = a.k_cache.data();
  p.v_cache = a.v_cache.data();
  p.out = a.out.data();
  p.block_table = a.block_table.data_as<const int>();
  p.seq_lens = a.seq_lens.data_as<const int>();
  p.query_start_len = a.query_start_len.data_as<const int>();
  p.capacity = s.capacity;
  p.max_pages_per_seq = s.max_pages;
  p.page_shift = std::countr_zero(static_cast<unsigned>(s.page_size));
  p.num_kv_heads = s.num_kv_heads;
  p.heads_per_kv = s.heads_per_kv;
  p.scale_log2 = a.softmax_scale * 1.4426950408889634f;
  return p;
}

// Calls fn.template operator()<T, D>() for the view's dtype and head_dim.
template <typename Fn>
auto dispatch(DType dtype, int head_dim, Fn&& fn) {
  auto by_dim = [&]<typename T>() {
    switch (head_dim) {
      case 64: return fn.template operator()<T, 64>();
      case 80: return fn.template operator()<T, 80>();
      case 96: return fn.template operator()<T, 96>();
      case 128: return fn.template operator()<T, 128>();
      default: return fn.template operator()<T, 256>();
    }
  };
  if (dtype == DType::bf16) return by_dim.template operator()<__nv_bfloat16>();
  return by_dim.template operator()<__half>();
}

struct DecodeLayout {
  int grid;         // persistent CTAs
  int target_items;
  long long max_items;
  std::size_t meta_bytes, max_sum_bytes, out_bytes;
  std::size_t total() const { return meta_bytes + max_sum_bytes + out_bytes; }
};

std::size_t round_up(std::size_t n, std::size_t to) { return (n + to - 1) / to * to; }

DecodeLayout decode_layout(const PagedAttentionArgs& args, const Shapes& s) {
  int device = 0;
  check_cuda(cudaGetDevice(&device), "cudaGetDevice");
  int sms = 0;
  check_cuda(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device), "cudaDeviceGetAttribute");
  const int blocks_per_sm = dispatch(args.q.dtype(), s.head_dim, [&]<typename T, int D>() {
    return cuda_detail::decode_attention_blocks_per_sm<T, D>(s.capacity);
  });
  DecodeLayout l{};
  l.grid = sms * blocks_per_sm;
#ifndef PAGEDSERVE_DECODE_ITEMS_PER_CTA  // benchmark experiments only
#define PAGEDSERVE_DECODE_ITEMS_PER_CTA 1
#endif
  l.target_items = l.grid * PAGEDSERVE_DECODE_ITEMS_PER_CTA;
  // Items = sum over rows of chunks x kv heads <= 2 x kv_heads x capacity + target_items
  // (each row adds at most one partial chunk; whole chunks are bounded by the target).
  l.max_items = 2LL * s.num_kv_heads * s.capacity + l.target_items;
  l.meta_bytes = round_up(sizeof(int) * (3 * static_cast<std::size_t>(s.capacity) + 1), 256);
  l.max_sum_bytes = round_up(static_cast<std::size_t>(l.max_items) * s.heads_per_kv * 2 * sizeof(float), 256);
  l.out_bytes = static_cast<std::size_t>(l.max_items) * s.heads_per_kv * s.head_dim * sizeof(float);
  return l;
}

constexpr int kMaxDecodeGroup = 16;
constexpr int kMaxPrefillGroup = 128;

}  // namespace

std::size_t decode_attention_cuda_workspace_bytes(const PagedAttentionArgs& args) {
  const Shapes s = check_args(args, kMaxDecodeGroup);
  return decode_layout(args, s).total();
}

void decode_attention_cuda(const PagedAttentionArgs& args, void* workspace, std::size_t workspace_bytes,
                           CudaStream stream) {
  const Shapes s = check_args(args, kMaxDecodeGroup);
  const DecodeLayout layout = decode_layout(args, s);
  require(workspace != nullptr && workspace_bytes >= layout.total(),
          "decode workspace needs " + std::to_string(layout.total()) + " bytes, got " + std::to_string(workspace_bytes));
  AttentionParams p = make_params(args, s);
  char* base = static_cast<char*>(workspace);
  p.row_chunks = reinterpret_cast<int*>(base);
  p.row_chunk_base = p.row_chunks + s.capacity;
  p.split_rows = p.row_chunk_base + s.capacity;
  p.split_count = p.split_rows + s.capacity;
  p.partial_max_sum = reinterpret_cast<float*>(base + layout.meta_bytes);
  p.partial_out = reinterpret_cast<float*>(base + layout.meta_bytes + layout.max_sum_bytes);
  p.target_items = layout.target_items;
  const cudaStream_t cuda_stream = stream;
  dispatch(args.q.dtype(), s.head_dim, [&]<typename T, int D>() {
    cuda_detail::launch_decode_attention<T, D>(p, layout.grid, cuda_stream);
    cuda_detail::launch_combine_decode<T>(p, D, cuda_stream);
    return 0;
  });
}

void prefill_attention_cuda(const PagedAttentionArgs& args, CudaStream stream) {
  const Shapes s = check_args(args, kMaxPrefillGroup);
  if (s.num_tokens == 0) return;
  const AttentionParams p = make_params(args, s);
  const cudaStream_t cuda_stream = stream;
  dispatch(args.q.dtype(), s.head_dim, [&]<typename T, int D>() {
    cuda_detail::launch_prefill_attention<T, D>(p, s.num_tokens, cuda_stream);
    return 0;
  });
}

}  // namespace pagedserve
