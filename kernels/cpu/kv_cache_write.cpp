#include "kernels/cpu/kv_cache_write.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>

#include "core/dtype.h"
#include "core/half.h"
#include "core/tensor_view.h"

namespace pagedserve {
namespace {

void require(bool condition, const std::string& what) {
  if (!condition) throw std::invalid_argument("write_kv_cache (cpu): " + what);
}

bool is_float(DType dtype) { return dtype == DType::f32 || dtype == DType::bf16 || dtype == DType::f16; }

float load_element(const void* base, DType dtype, std::int64_t i) {
  switch (dtype) {
    case DType::bf16:
      return to_float(static_cast<const bf16*>(base)[i]);
    case DType::f16:
      return to_float(static_cast<const f16*>(base)[i]);
    default:
      return static_cast<const float*>(base)[i];
  }
}

void store_element(void* base, DType dtype, std::int64_t i, float value) {
  switch (dtype) {
    case DType::bf16:
      static_cast<bf16*>(base)[i] = to_bf16(value);
      return;
    case DType::f16:
      static_cast<f16*>(base)[i] = to_f16(value);
      return;
    default:
      static_cast<float*>(base)[i] = value;
      return;
  }
}

// One token's [num_kv_heads, head_dim] row into one cache slot.
void copy_row(const TensorView& src, std::int64_t token, const TensorView& cache, std::int64_t slot_element) {
  const std::int64_t heads = src.size(1);
  const std::int64_t head_dim = src.size(2);
  const std::size_t elem = dtype_size(src.dtype());
  for (std::int64_t h = 0; h < heads; ++h) {
    const std::int64_t from = token * src.stride(0) + h * src.stride(1);
    const std::int64_t to = slot_element + h * head_dim;
    if (src.dtype() == cache.dtype()) {
      std::memcpy(static_cast<char*>(cache.data()) + to * static_cast<std::int64_t>(elem),
                  static_cast<const char*>(src.data()) + from * static_cast<std::int64_t>(elem),
                  static_cast<std::size_t>(head_dim) * elem);
    } else {
      for (std::int64_t i = 0; i < head_dim; ++i) {
        store_element(cache.data(), cache.dtype(), to + i, load_element(src.data(), src.dtype(), from + i));
      }
    }
  }
}

}  // namespace

void write_kv_cache(const KVCacheWriteArgs& args, ThreadPool& pool) {
  require(args.k_new.rank() == 3 && args.v_new.rank() == 3,
          "k_new/v_new must be [num_tokens, num_kv_heads, head_dim]");
  require(args.k_cache.rank() == 4 && args.v_cache.rank() == 4,
          "k_cache/v_cache must be [num_pages, page_size, num_kv_heads, head_dim]");
  require(args.slot_mapping.rank() == 1 && args.slot_mapping.dtype() == DType::i32 &&
              args.slot_mapping.is_contiguous(),
          "slot_mapping must be [num_tokens] contiguous i32");
  for (const TensorView* v : {&args.k_new, &args.v_new, &args.slot_mapping, &args.k_cache, &args.v_cache}) {
    require(v->device() == Device::cpu, "every tensor must be a CPU view");
  }
  require(is_float(args.k_new.dtype()) && args.v_new.dtype() == args.k_new.dtype() &&
              is_float(args.k_cache.dtype()) && args.v_cache.dtype() == args.k_cache.dtype(),
          "k_new/v_new share a float dtype; k_cache/v_cache share a float dtype");
  for (int d = 0; d < 4; ++d)
    require(args.k_cache.size(d) == args.v_cache.size(d), "k_cache and v_cache shapes differ");
  for (int d = 0; d < 3; ++d)
    require(args.k_new.size(d) == args.v_new.size(d), "k_new and v_new shapes differ");
  require(args.k_cache.is_contiguous() && args.v_cache.is_contiguous(),
          "k_cache and v_cache must be contiguous");
  require(args.k_new.stride(2) == 1 && args.v_new.stride(2) == 1,
          "k_new/v_new rows must be contiguous along head_dim");
  require(args.k_new.size(0) == args.slot_mapping.size(0), "slot_mapping must have one entry per token");
  require(args.k_new.size(1) == args.k_cache.size(2) && args.k_new.size(2) == args.k_cache.size(3),
          "k_new and k_cache disagree on num_kv_heads or head_dim");

  const std::int64_t num_tokens = args.k_new.size(0);
  const std::int64_t num_slots = args.k_cache.size(0) * args.k_cache.size(1);
  const std::int32_t* slots = args.slot_mapping.data_as<const std::int32_t>();
  for (std::int64_t t = 0; t < num_tokens; ++t) {
    require(slots[t] < num_slots,
            "slot_mapping[" + std::to_string(t) + "] = " + std::to_string(slots[t]) + " is past the cache");
  }
  const std::int64_t slot_elements = args.k_cache.size(2) * args.k_cache.size(3);
  // Small steps (decode) are a few KiB: not worth waking the pool.
  constexpr std::int64_t kTokensPerTask = 64;
  const std::int64_t num_tasks = (num_tokens + kTokensPerTask - 1) / kTokensPerTask;
  pool.parallel_for(num_tasks, [&](std::int64_t task) {
    const std::int64_t end = std::min(num_tokens, (task + 1) * kTokensPerTask);
    for (std::int64_t t = task * kTokensPerTask; t < end; ++t) {
      if (slots[t] < 0) continue;
      copy_row(args.k_new, t, args.k_cache, slots[t] * slot_elements);
      copy_row(args.v_new, t, args.v_cache, slots[t] * slot_elements);
    }
  });
}

}  // namespace pagedserve
