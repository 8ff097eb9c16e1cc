#include "kernels/reference/matmul_reference.h"

#include "core/half.h"

namespace pagedserve {
namespace {

double weight_at(const TensorView& w, std::int64_t index) {
  switch (w.dtype()) {
    case DType::bf16:
      return to_float(w.data_as<const bf16>()[index]);
    case DType::f16:
      return to_float(w.data_as<const f16>()[index]);
    default:
      return w.data_as<const float>()[index];
  }
}

}  // namespace

void matmul_reference(const TensorView& x, const TensorView& w, const TensorView& bias, const TensorView& y) {
  const std::int64_t m = x.size(0);
  const std::int64_t k = x.size(1);
  const std::int64_t n = w.size(0);
  for (std::int64_t i = 0; i < m; ++i) {
    for (std::int64_t j = 0; j < n; ++j) {
      double sum = bias.data() == nullptr ? 0.0 : bias.data_as<const float>()[j];
      for (std::int64_t kk = 0; kk < k; ++kk) {
        float xv = x.data_as<const float>()[i * x.stride(0) + kk];
        if (w.dtype() == DType::bf16) xv = to_float(to_bf16(xv));  // the contract of matmul.h
        sum += static_cast<double>(xv) * weight_at(w, j * k + kk);
      }
      y.data_as<float>()[i * y.stride(0) + j] = static_cast<float>(sum);
    }
  }
}

}  // namespace pagedserve
