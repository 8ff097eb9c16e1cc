// Random paged-attention batches for kernel tests, shared by the CPU and CUDA kernel tests.
// Header-only and free of GoogleTest so a .cu test can include it too.
//
// A PagedBatch owns host memory laid out exactly as kernels/attention.h describes, built so that
// a kernel reading anything it must not read shows up as a NaN:
//   - physical pages are a random permutation of the pool; spare pages nobody owns are NaN;
//   - in every owned page, slots at or past the row's seq_len are NaN;
//   - rows without queries (seq_len 0, or seq_len > 0 with q_len 0) have all-NaN pages;
//   - block_table entries past a row's last needed page are -1 or point at a NaN page (both
//     must be ignored); inactive rows' entries likewise;
//   - q rows past the last live query (padding tokens) are NaN, and `out` starts all NaN, so a
//     kernel must write every live row and nothing else (check with compare_to_reference).
// Values: q ~ N(0, q_std^2), K and V ~ N(0, 1), rounded to the batch dtype; softmax_scale is
// 1/sqrt(head_dim), so scores spread by about q_std and the softmax is neither flat nor one-hot.
// Not thread-safe; one test owns one batch.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <numeric>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/half.h"
#include "core/tensor_view.h"
#include "kernels/attention.h"

namespace pagedserve::testing {

// One batch row. Inactive: {0, 0}. Decode: q_len 1. Prefill without context: q_len == seq_len.
struct PagedRowSpec {
  int seq_len = 0;  // live K/V length after this step
  int q_len = 0;    // query rows this step (the last q_len positions of the sequence)
};

struct PagedBatchSpec {
  int num_kv_heads = 8;
  int heads_per_kv = 4;
  int head_dim = 128;
  int page_size = 16;
  DType dtype = DType::f32;
  std::vector<PagedRowSpec> rows;
  int spare_pages = 3;          // NaN pages in the pool that no row owns
  int extra_table_columns = 2;  // block_table columns past the longest row's pages
  int padding_tokens = 2;       // NaN q rows after the live ones
  double q_std = 1.5;
  std::uint64_t seed = 1;
};

inline std::string describe(const PagedBatchSpec& spec) {
  std::ostringstream out;
  out << dtype_name(spec.dtype) << " kv_heads=" << spec.num_kv_heads << " group=" << spec.heads_per_kv
      << " head_dim=" << spec.head_dim << " page=" << spec.page_size << " seed=" << spec.seed << " rows=[";
  for (std::size_t i = 0; i < spec.rows.size(); ++i) {
    out << (i ? " " : "") << spec.rows[i].seq_len << "/" << spec.rows[i].q_len;
  }
  out << "] (seq_len/q_len)";
  return out.str();
}

// The bits of a quiet NaN in `dtype`, written `count` times from `data`.
inline void fill_nan(void* data, DType dtype, std::size_t count) {
  if (dtype == DType::f32) {
    std::fill_n(static_cast<float*>(data), count, std::numeric_limits<float>::quiet_NaN());
  } else {
    const std::uint16_t bits = dtype == DType::bf16 ? 0x7fc0 : 0x7e00;
    std::fill_n(static_cast<std::uint16_t*>(data), count, bits);
  }
}

inline void store_float(void* data, DType dtype, std::size_t index, float value) {
  switch (dtype) {
    case DType::f32:
      static_cast<float*>(data)[index] = value;
      return;
    case DType::bf16:
      static_cast<bf16*>(data)[index] = to_bf16(value);
      return;
    case DType::f16:
      static_cast<f16*>(data)[index] = to_f16(value);
      return;
    case DType::i32:
      return;
  }
}

inline float load_float(const void* data, DType dtype, std::size_t index) {
  switch (dtype) {
    case DType::f32:
      return static_cast<const float*>(data)[index];
    case DType::bf16:
      return to_float(static_cast<const bf16*>(data)[index]);
    case DType::f16:
      return to_float(static_cast<const f16*>(data)[index]);
    case DType::i32:
      break;
  }
  return std::numeric_limits<float>::quiet_NaN();
}

class PagedBatch {
 public:
  explicit PagedBatch(const PagedBatchSpec& spec) : spec_(spec) { build(); }

  const PagedBatchSpec& spec() const { return spec_; }
  int capacity() const { return static_cast<int>(spec_.rows.size()); }
  int num_tokens() const { return num_tokens_; }
  int num_live_tokens() const { return num_live_tokens_; }
  int num_pages() const { return num_pages_; }
  int max_pages_per_seq() const { return max_pages_per_seq_; }
  std::int64_t row_elements() const {  // elements of one token row of q / out
    return static_cast<std::int64_t>(spec_.num_kv_heads) * spec_.heads_per_kv * spec_.head_dim;
  }

  // Host views over this batch's memory; `out` is the given buffer (e.g. reference_out()).
  PagedAttentionArgs args(std::vector<std::uint8_t>& out) {
    PagedAttentionArgs a;
    const std::int64_t kv = spec_.num_kv_heads, g = spec_.heads_per_kv, d = spec_.head_dim;
    a.q = TensorView(q_.data(), spec_.dtype, {num_tokens_, kv, g, d});
    a.k_cache = TensorView(k_cache_.data(), spec_.dtype, {num_pages_, spec_.page_size, kv, d});
    a.v_cache = TensorView(v_cache_.data(), spec_.dtype, {num_pages_, spec_.page_size, kv, d});
    a.block_table = TensorView(block_table_.data(), DType::i32, {capacity(), max_pages_per_seq_});
    a.seq_lens = TensorView(seq_lens_.data(), DType::i32, {capacity()});
    a.query_start_len = TensorView(query_start_len_.data(), DType::i32, {capacity() + 1});
    a.out = TensorView(out.data(), spec_.dtype, {num_tokens_, kv, g, d});
    a.softmax_scale = 1.0f / std::sqrt(static_cast<float>(spec_.head_dim));
    return a;
  }

  // A fresh all-NaN output buffer the size of q.
  std::vector<std::uint8_t> make_output() const {
    std::vector<std::uint8_t> out(q_.size());
    fill_nan(out.data(), spec_.dtype, static_cast<std::size_t>(num_tokens_ * row_elements()));
    return out;
  }

  // Raw host storage, for copying to a device.
  const std::vector<std::uint8_t>& q() const { return q_; }
  const std::vector<std::uint8_t>& k_cache() const { return k_cache_; }
  const std::vector<std::uint8_t>& v_cache() const { return v_cache_; }
  const std::vector<std::int32_t>& block_table() const { return block_table_; }
  const std::vector<std::int32_t>& seq_lens() const { return seq_lens_; }
  const std::vector<std::int32_t>& query_start_len() const { return query_start_len_; }

 private:
  void build() {
    std::mt19937_64 rng(spec_.seed);
    const int page_size = spec_.page_size;
    const std::int64_t kv_row = static_cast<std::int64_t>(spec_.num_kv_heads) * spec_.head_dim;

    // Rows, pages needed and the pool.
    query_start_len_.assign(spec_.rows.size() + 1, 0);
    seq_lens_.assign(spec_.rows.size(), 0);
    int pages_needed = 0;
    max_pages_per_seq_ = 0;
    for (std::size_t s = 0; s < spec_.rows.size(); ++s) {
      const PagedRowSpec& row = spec_.rows[s];
      seq_lens_[s] = row.seq_len;
      query_start_len_[s + 1] = query_start_len_[s] + row.q_len;
      const int pages = (row.seq_len + page_size - 1) / page_size;
      pages_needed += pages;
      max_pages_per_seq_ = std::max(max_pages_per_seq_, pages);
    }
    max_pages_per_seq_ += spec_.extra_table_columns;
    max_pages_per_seq_ = std::max(max_pages_per_seq_, 1);
    num_live_tokens_ = query_start_len_.back();
    num_tokens_ = num_live_tokens_ + spec_.padding_tokens;
    num_pages_ = pages_needed + spec_.spare_pages;

    std::vector<std::int32_t> pool(static_cast<std::size_t>(num_pages_));
    std::iota(pool.begin(), pool.end(), 0);
    std::shuffle(pool.begin(), pool.end(), rng);

    const std::size_t elem = dtype_size(spec_.dtype);
    const std::size_t cache_elements = static_cast<std::size_t>(num_pages_) * page_size * kv_row;
    k_cache_.resize(cache_elements * elem);
    v_cache_.resize(cache_elements * elem);
    fill_nan(k_cache_.data(), spec_.dtype, cache_elements);
    fill_nan(v_cache_.data(), spec_.dtype, cache_elements);

    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::uniform_int_distribution<int> coin(0, 1);
    const int num_spare = spec_.spare_pages;
    auto stale_or_none = [&]() -> std::int32_t {
      if (num_spare > 0 && coin(rng)) {
        return pool[static_cast<std::size_t>(pages_needed +
                                             std::uniform_int_distribution<int>(0, num_spare - 1)(rng))];
      }
      return -1;
    };

    block_table_.assign(spec_.rows.size() * static_cast<std::size_t>(max_pages_per_seq_), -1);
    std::size_t next_page = 0;
    for (std::size_t s = 0; s < spec_.rows.size(); ++s) {
      const PagedRowSpec& row = spec_.rows[s];
      const int pages = (row.seq_len + page_size - 1) / page_size;
      std::int32_t* table_row = block_table_.data() + s * static_cast<std::size_t>(max_pages_per_seq_);
      for (int p = 0; p < max_pages_per_seq_; ++p)
        table_row[p] = p < pages ? pool[next_page++] : stale_or_none();
      if (row.q_len == 0) continue;  // nobody reads this row's pages: leave them NaN
      for (int position = 0; position < row.seq_len; ++position) {
        const std::size_t base =
            (static_cast<std::size_t>(table_row[position / page_size]) * page_size + position % page_size) *
            kv_row;
        for (std::int64_t i = 0; i < kv_row; ++i) {
          store_float(k_cache_.data(), spec_.dtype, base + i, normal(rng));
          store_float(v_cache_.data(), spec_.dtype, base + i, normal(rng));
        }
      }
    }

    const std::size_t q_elements = static_cast<std::size_t>(num_tokens_ * row_elements());
    q_.resize(q_elements * elem);
    fill_nan(q_.data(), spec_.dtype, q_elements);
    for (std::size_t i = 0; i < static_cast<std::size_t>(num_live_tokens_ * row_elements()); ++i) {
      store_float(q_.data(), spec_.dtype, i, static_cast<float>(spec_.q_std) * normal(rng));
    }
  }

  PagedBatchSpec spec_;
  int num_tokens_ = 0;
  int num_live_tokens_ = 0;
  int num_pages_ = 0;
  int max_pages_per_seq_ = 0;
  std::vector<std::uint8_t> q_;                // [num_tokens, num_kv_heads, heads_per_kv, head_dim]
  std::vector<std::uint8_t> k_cache_;          // [num_pages, page_size, num_kv_heads, head_dim]
  std::vector<std::uint8_t> v_cache_;          // [num_pages, page_size, num_kv_heads, head_dim]
  std::vector<std::int32_t> block_table_;      // [capacity, max_pages_per_seq]
  std::vector<std::int32_t> seq_lens_;         // [capacity]
  std::vector<std::int32_t> query_start_len_;  // [capacity + 1]
};

// How an output compares with the reference's. Live token rows: every value finite, and per
// (token, q head) the L2 norm of the difference over head_dim divided by the L2 norm of the
// reference vector (the usual norm-wise relative error; element-wise ratios are meaningless for
// values near zero). Padding rows: must still hold the NaN bits they started with.
struct OutputComparison {
  double max_relative_error = 0.0;
  std::int64_t non_finite_values = 0;
  std::int64_t touched_padding_values = 0;
  std::string worst;  // where max_relative_error occurred

  bool ok(double tolerance) const {
    return non_finite_values == 0 && touched_padding_values == 0 && max_relative_error <= tolerance;
  }
  std::string summary() const {
    std::ostringstream out;
    out << "max relative error " << max_relative_error << " at " << worst << ", non-finite "
        << non_finite_values << ", padding values written " << touched_padding_values;
    return out.str();
  }
};

inline OutputComparison compare_to_reference(const PagedBatch& batch, const std::vector<std::uint8_t>& actual,
                                             const std::vector<std::uint8_t>& expected) {
  OutputComparison result;
  const PagedBatchSpec& spec = batch.spec();
  const DType dtype = spec.dtype;
  const std::int64_t d = spec.head_dim;
  const std::int64_t heads = static_cast<std::int64_t>(spec.num_kv_heads) * spec.heads_per_kv;
  for (std::int64_t token = 0; token < batch.num_live_tokens(); ++token) {
    for (std::int64_t h = 0; h < heads; ++h) {
      double diff2 = 0.0, ref2 = 0.0;
      for (std::int64_t i = 0; i < d; ++i) {
        const std::size_t index = static_cast<std::size_t>((token * heads + h) * d + i);
        const double a = load_float(actual.data(), dtype, index);
        const double e = load_float(expected.data(), dtype, index);
        if (!std::isfinite(a)) ++result.non_finite_values;
        diff2 += (a - e) * (a - e);
        ref2 += e * e;
      }
      double relative = std::sqrt(diff2) / std::max(std::sqrt(ref2), 1e-30);
      if (std::isnan(relative)) relative = std::numeric_limits<double>::infinity();
      if (relative > result.max_relative_error) {
        result.max_relative_error = relative;
        result.worst = "token " + std::to_string(token) + " q head " + std::to_string(h);
      }
    }
  }
  const std::size_t elem = dtype_size(dtype);
  const std::size_t first = static_cast<std::size_t>(batch.num_live_tokens() * batch.row_elements()) * elem;
  std::vector<std::uint8_t> nan_row(elem);
  fill_nan(nan_row.data(), dtype, 1);
  for (std::size_t byte = first; byte < actual.size(); byte += elem) {
    if (std::memcmp(actual.data() + byte, nan_row.data(), elem) != 0) ++result.touched_padding_values;
  }
  return result;
}

}  // namespace pagedserve::testing
