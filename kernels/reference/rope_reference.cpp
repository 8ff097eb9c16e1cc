#include "kernels/reference/rope_reference.h"

#include <cmath>

namespace pagedserve {

void apply_rope_reference(const TensorView& x, const TensorView& positions, const TensorView& inv_freq) {
  const std::int64_t head_dim = x.size(2);
  const std::int64_t half = head_dim / 2;
  for (std::int64_t t = 0; t < x.size(0); ++t) {
    const float position = static_cast<float>(positions.data_as<const std::int32_t>()[t]);
    for (std::int64_t h = 0; h < x.size(1); ++h) {
      float* v = x.data_as<float>() + (t * x.size(1) + h) * head_dim;
      for (std::int64_t i = 0; i < half; ++i) {
        const double angle = static_cast<double>(position * inv_freq.data_as<const float>()[i]);
        const double a = v[i];
        const double b = v[i + half];
        v[i] = static_cast<float>(a * std::cos(angle) - b * std::sin(angle));
        v[i + half] = static_cast<float>(b * std::cos(angle) + a * std::sin(angle));
      }
    }
  }
}

}  // namespace pagedserve
