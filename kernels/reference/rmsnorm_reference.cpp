#include "kernels/reference/rmsnorm_reference.h"

#include <cmath>

namespace pagedserve {

void rms_norm_reference(const TensorView& x, const TensorView& weight, float eps, const TensorView& out) {
  const std::int64_t rows = x.size(0);
  const std::int64_t dim = x.size(1);
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* in = x.data_as<const float>() + r * x.stride(0);
    double sum_squares = 0;
    for (std::int64_t i = 0; i < dim; ++i) sum_squares += static_cast<double>(in[i]) * in[i];
    const double scale = 1.0 / std::sqrt(sum_squares / static_cast<double>(dim) + eps);
    for (std::int64_t i = 0; i < dim; ++i) {
      out.data_as<float>()[r * out.stride(0) + i] =
          static_cast<float>(in[i] * scale * weight.data_as<const float>()[i]);
    }
  }
}

}  // namespace pagedserve
