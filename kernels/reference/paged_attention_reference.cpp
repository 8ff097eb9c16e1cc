#include "kernels/reference/paged_attention_reference.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/half.h"
#include "core/tensor_view.h"

namespace pagedserve {
namespace {

void require(bool condition, const std::string& what) {
  if (!condition) throw std::invalid_argument("paged attention reference: " + what);
}

std::int64_t offset_of(const TensorView& view, std::int64_t i0, std::int64_t i1, std::int64_t i2,
                       std::int64_t i3) {
  return i0 * view.stride(0) + i1 * view.stride(1) + i2 * view.stride(2) + i3 * view.stride(3);
}

double load_element(const TensorView& view, std::int64_t offset) {
  switch (view.dtype()) {
    case DType::f32:
      return view.data_as<const float>()[offset];
    case DType::bf16:
      return to_float(view.data_as<const bf16>()[offset]);
    case DType::f16:
      return to_float(view.data_as<const f16>()[offset]);
    case DType::i32:
      break;
  }
  throw std::invalid_argument("paged attention reference: not a float tensor");
}

void store_element(const TensorView& view, std::int64_t offset, double value) {
  const float f = static_cast<float>(value);
  switch (view.dtype()) {
    case DType::f32:
      view.data_as<float>()[offset] = f;
      return;
    case DType::bf16:
      view.data_as<bf16>()[offset] = to_bf16(f);
      return;
    case DType::f16:
      view.data_as<f16>()[offset] = to_f16(f);
      return;
    case DType::i32:
      break;
  }
  throw std::invalid_argument("paged attention reference: not a float tensor");
}

bool is_float(DType dtype) { return dtype == DType::f32 || dtype == DType::bf16 || dtype == DType::f16; }

std::int32_t load_i32(const TensorView& view, std::int64_t i) {
  return view.data_as<const std::int32_t>()[i * view.stride(0)];
}

std::int32_t load_i32(const TensorView& view, std::int64_t i, std::int64_t j) {
  return view.data_as<const std::int32_t>()[i * view.stride(0) + j * view.stride(1)];
}

void require_cpu(const TensorView& view, const std::string& name) {
  require(view.device() == Device::cpu, name + " must be a CPU view");
  require(view.data() != nullptr || view.numel() == 0, name + " has no data");
}

void check_attention_shapes(const PagedAttentionArgs& a) {
  require(a.sliding_window == 0, "sliding_window is reserved and must be 0");
  require(a.logit_softcap == 0.0f, "logit_softcap is reserved and must be 0");
  require(std::isfinite(a.softmax_scale), "softmax_scale must be finite");
  require(a.q.rank() == 4, "q must be [num_tokens, num_kv_heads, heads_per_kv, head_dim]");
  require(a.k_cache.rank() == 4, "k_cache must be [num_pages, page_size, num_kv_heads, head_dim]");
  require(a.v_cache.rank() == 4, "v_cache must be [num_pages, page_size, num_kv_heads, head_dim]");
  require(a.out.rank() == 4, "out must have the shape of q");
  require(a.block_table.rank() == 2, "block_table must be [batch_capacity, max_pages_per_seq]");
  require(a.seq_lens.rank() == 1, "seq_lens must be [batch_capacity]");
  require(a.query_start_len.rank() == 1, "query_start_len must be [batch_capacity + 1]");
  for (const TensorView* v :
       {&a.q, &a.k_cache, &a.v_cache, &a.out, &a.block_table, &a.seq_lens, &a.query_start_len}) {
    require_cpu(*v, "every tensor");
  }
  require(is_float(a.q.dtype()), "q must be f32, bf16 or f16");
  require(
      a.k_cache.dtype() == a.q.dtype() && a.v_cache.dtype() == a.q.dtype() && a.out.dtype() == a.q.dtype(),
      "q, k_cache, v_cache and out must share one dtype");
  require(a.block_table.dtype() == DType::i32 && a.seq_lens.dtype() == DType::i32 &&
              a.query_start_len.dtype() == DType::i32,
          "block_table, seq_lens and query_start_len must be i32");
  for (int d = 0; d < 4; ++d) {
    require(a.k_cache.size(d) == a.v_cache.size(d), "k_cache and v_cache shapes differ");
    require(a.out.size(d) == a.q.size(d), "out and q shapes differ");
  }
  require(a.q.size(1) == a.k_cache.size(2), "q and k_cache disagree on num_kv_heads");
  require(a.q.size(3) == a.k_cache.size(3), "q and k_cache disagree on head_dim");
  require(a.q.size(1) > 0 && a.q.size(2) > 0 && a.q.size(3) > 0, "empty head dimensions");
  require(a.k_cache.size(1) > 0, "page_size must be positive");
  const std::int64_t capacity = a.seq_lens.size(0);
  require(a.block_table.size(0) == capacity, "block_table rows != batch_capacity");
  require(a.query_start_len.size(0) == capacity + 1, "query_start_len must have batch_capacity + 1 entries");
}

void check_attention_metadata(const PagedAttentionArgs& a) {
  const std::int64_t capacity = a.seq_lens.size(0);
  const std::int64_t page_size = a.k_cache.size(1);
  const std::int64_t num_pages = a.k_cache.size(0);
  const std::int64_t max_pages = a.block_table.size(1);
  const std::int64_t num_tokens = a.q.size(0);
  require(load_i32(a.query_start_len, 0) >= 0, "query_start_len[0] must be >= 0");
  for (std::int64_t s = 0; s < capacity; ++s) {
    const std::int64_t begin = load_i32(a.query_start_len, s);
    const std::int64_t end = load_i32(a.query_start_len, s + 1);
    const std::int64_t seq_len = load_i32(a.seq_lens, s);
    const std::string row = "row " + std::to_string(s) + ": ";
    require(end >= begin, row + "query_start_len must not decrease");
    require(end <= num_tokens, row + "query_start_len points past num_tokens");
    require(seq_len >= end - begin, row + "seq_len must be >= q_len");
    require((seq_len + page_size - 1) / page_size <= max_pages,
            row + "seq_len needs more pages than block_table holds");
    if (end == begin) continue;  // no query: its pages are never read
    for (std::int64_t p = 0; p < (seq_len + page_size - 1) / page_size; ++p) {
      const std::int64_t page = load_i32(a.block_table, s, p);
      require(page >= 0 && page < num_pages,
              row + "block_table[" + std::to_string(p) + "] = " + std::to_string(page) + " is not a page");
    }
  }
}

}  // namespace

void paged_attention_reference(const PagedAttentionArgs& args) {
  check_attention_shapes(args);
  check_attention_metadata(args);
  const std::int64_t num_kv_heads = args.q.size(1);
  const std::int64_t heads_per_kv = args.q.size(2);
  const std::int64_t head_dim = args.q.size(3);
  const std::int64_t page_size = args.k_cache.size(1);
  const std::int64_t capacity = args.seq_lens.size(0);

  std::vector<double> query(static_cast<std::size_t>(head_dim));
  std::vector<double> scores;
  std::vector<double> accumulator(static_cast<std::size_t>(head_dim));
  for (std::int64_t s = 0; s < capacity; ++s) {
    const std::int64_t q_begin = load_i32(args.query_start_len, s);
    const std::int64_t q_len = load_i32(args.query_start_len, s + 1) - q_begin;
    const std::int64_t context_len = load_i32(args.seq_lens, s) - q_len;
    for (std::int64_t i = 0; i < q_len; ++i) {
      const std::int64_t token = q_begin + i;
      const std::int64_t visible = context_len + i + 1;  // keys [0, context_len + i]
      scores.assign(static_cast<std::size_t>(visible), 0.0);
      for (std::int64_t h = 0; h < num_kv_heads; ++h) {
        for (std::int64_t g = 0; g < heads_per_kv; ++g) {
          for (std::int64_t d = 0; d < head_dim; ++d) {
            query[static_cast<std::size_t>(d)] = load_element(args.q, offset_of(args.q, token, h, g, d));
          }
          double max_score = -std::numeric_limits<double>::infinity();
          for (std::int64_t j = 0; j < visible; ++j) {
            const std::int64_t page = load_i32(args.block_table, s, j / page_size);
            double dot = 0.0;
            for (std::int64_t d = 0; d < head_dim; ++d) {
              dot += query[static_cast<std::size_t>(d)] *
                     load_element(args.k_cache, offset_of(args.k_cache, page, j % page_size, h, d));
            }
            scores[static_cast<std::size_t>(j)] = dot * static_cast<double>(args.softmax_scale);
            if (scores[static_cast<std::size_t>(j)] > max_score)
              max_score = scores[static_cast<std::size_t>(j)];
          }
          double sum = 0.0;
          for (double& score : scores) {
            score = std::exp(score - max_score);
            sum += score;
          }
          accumulator.assign(static_cast<std::size_t>(head_dim), 0.0);
          for (std::int64_t j = 0; j < visible; ++j) {
            const std::int64_t page = load_i32(args.block_table, s, j / page_size);
            const double weight = scores[static_cast<std::size_t>(j)] / sum;
            for (std::int64_t d = 0; d < head_dim; ++d) {
              accumulator[static_cast<std::size_t>(d)] +=
                  weight * load_element(args.v_cache, offset_of(args.v_cache, page, j % page_size, h, d));
            }
          }
          for (std::int64_t d = 0; d < head_dim; ++d) {
            store_element(args.out, offset_of(args.out, token, h, g, d),
                          accumulator[static_cast<std::size_t>(d)]);
          }
        }
      }
    }
  }
}

void write_kv_cache_reference(const KVCacheWriteArgs& args) {
  require(args.k_new.rank() == 3 && args.v_new.rank() == 3,
          "k_new/v_new must be [num_tokens, num_kv_heads, head_dim]");
  require(args.k_cache.rank() == 4 && args.v_cache.rank() == 4,
          "k_cache/v_cache must be [num_pages, page_size, num_kv_heads, head_dim]");
  require(args.slot_mapping.rank() == 1 && args.slot_mapping.dtype() == DType::i32,
          "slot_mapping must be [num_tokens] i32");
  for (const TensorView* v : {&args.k_new, &args.v_new, &args.slot_mapping, &args.k_cache, &args.v_cache}) {
    require_cpu(*v, "every tensor");
  }
  require(is_float(args.k_new.dtype()) && is_float(args.v_new.dtype()) && is_float(args.k_cache.dtype()) &&
              args.v_cache.dtype() == args.k_cache.dtype(),
          "k_new/v_new must be float; k_cache and v_cache must share a float dtype");
  for (int d = 0; d < 4; ++d)
    require(args.k_cache.size(d) == args.v_cache.size(d), "k_cache and v_cache shapes differ");
  for (int d = 0; d < 3; ++d)
    require(args.k_new.size(d) == args.v_new.size(d), "k_new and v_new shapes differ");
  require(args.k_new.size(0) == args.slot_mapping.size(0), "slot_mapping must have one entry per token");
  require(args.k_new.size(1) == args.k_cache.size(2) && args.k_new.size(2) == args.k_cache.size(3),
          "k_new and k_cache disagree on num_kv_heads or head_dim");
  const std::int64_t page_size = args.k_cache.size(1);
  const std::int64_t num_slots = args.k_cache.size(0) * page_size;
  for (std::int64_t t = 0; t < args.k_new.size(0); ++t) {
    const std::int64_t slot = load_i32(args.slot_mapping, t);
    if (slot < 0) continue;
    require(slot < num_slots,
            "slot_mapping[" + std::to_string(t) + "] = " + std::to_string(slot) + " is past the cache");
    const std::int64_t page = slot / page_size;
    const std::int64_t offset = slot % page_size;
    for (std::int64_t h = 0; h < args.k_new.size(1); ++h) {
      for (std::int64_t d = 0; d < args.k_new.size(2); ++d) {
        const std::int64_t src_k =
            t * args.k_new.stride(0) + h * args.k_new.stride(1) + d * args.k_new.stride(2);
        const std::int64_t src_v =
            t * args.v_new.stride(0) + h * args.v_new.stride(1) + d * args.v_new.stride(2);
        // Through f32 as the kernels do: f32 -> bf16/f16 rounds once, f16 <-> bf16 goes via f32.
        store_element(args.k_cache, offset_of(args.k_cache, page, offset, h, d),
                      static_cast<float>(load_element(args.k_new, src_k)));
        store_element(args.v_cache, offset_of(args.v_cache, page, offset, h, d),
                      static_cast<float>(load_element(args.v_new, src_v)));
      }
    }
  }
}

}  // namespace pagedserve
