#include "kernels/cpu/rmsnorm.h"

#include <cassert>
#include <cmath>

namespace pagedserve {

void rms_norm(const TensorView& x, const TensorView& weight, float eps, const TensorView& out) {
  const std::int64_t rows = x.size(0);
  const std::int64_t dim = x.size(1);
  assert(weight.numel() == dim && out.size(0) == rows && out.size(1) == dim);
  const float* w = weight.data_as<const float>();
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* in = x.data_as<const float>() + r * x.stride(0);
    float* o = out.data_as<float>() + r * out.stride(0);
    float sum_squares = 0.0f;
    for (std::int64_t i = 0; i < dim; ++i) sum_squares += in[i] * in[i];
    const float scale = 1.0f / std::sqrt(sum_squares / static_cast<float>(dim) + eps);
    for (std::int64_t i = 0; i < dim; ++i) o[i] = in[i] * scale * w[i];
  }
}

}  // namespace pagedserve
