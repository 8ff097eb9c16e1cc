#include "kernels/cpu/embedding.h"

#include <cassert>
#include <cstring>

#include "core/half.h"

namespace pagedserve {
namespace {

template <typename Src, typename Dst>
void convert_typed(const Src* src, std::int64_t count, Dst* dst) {
  for (std::int64_t i = 0; i < count; ++i) dst[i] = store_from_float<Dst>(load_as_float(src[i]));
}

template <typename Src>
void convert_from(const Src* src, std::int64_t count, const TensorView& dst) {
  switch (dst.dtype()) {
    case DType::bf16:
      convert_typed(src, count, dst.data_as<bf16>());
      break;
    case DType::f16:
      convert_typed(src, count, dst.data_as<f16>());
      break;
    default:
      convert_typed(src, count, dst.data_as<float>());
      break;
  }
}

}  // namespace

void convert_elements(const TensorView& src, const TensorView& dst) {
  const std::int64_t count = src.numel();
  assert(dst.numel() == count && src.is_contiguous() && dst.is_contiguous());
  if (src.dtype() == dst.dtype()) {
    std::memmove(dst.data(), src.data(), src.nbytes());
    return;
  }
  switch (src.dtype()) {
    case DType::bf16:
      convert_from(src.data_as<const bf16>(), count, dst);
      break;
    case DType::f16:
      convert_from(src.data_as<const f16>(), count, dst);
      break;
    default:
      convert_from(src.data_as<const float>(), count, dst);
      break;
  }
}

void embedding_lookup(const TensorView& table, std::span<const std::int32_t> token_ids,
                      const TensorView& out) {
  const std::int64_t hidden = table.size(1);
  assert(out.size(0) == static_cast<std::int64_t>(token_ids.size()) && out.size(1) == hidden);
  const std::size_t row_bytes = static_cast<std::size_t>(hidden) * dtype_size(table.dtype());
  for (std::size_t t = 0; t < token_ids.size(); ++t) {
    assert(token_ids[t] >= 0 && token_ids[t] < table.size(0));
    const void* row =
        static_cast<const char*>(table.data()) + static_cast<std::size_t>(token_ids[t]) * row_bytes;
    TensorView src(const_cast<void*>(row), table.dtype(), {hidden});
    TensorView dst(out.data_as<float>() + static_cast<std::int64_t>(t) * out.stride(0), DType::f32, {hidden});
    convert_elements(src, dst);
  }
}

void add_in_place(const TensorView& x, const TensorView& y) {
  const std::int64_t count = x.numel();
  assert(y.numel() == count && x.is_contiguous() && y.is_contiguous());
  float* a = x.data_as<float>();
  const float* b = y.data_as<const float>();
  for (std::int64_t i = 0; i < count; ++i) a[i] += b[i];
}

}  // namespace pagedserve
