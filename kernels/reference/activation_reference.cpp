#include "kernels/reference/activation_reference.h"

#include <cmath>

namespace pagedserve {

void silu_mul_reference(const TensorView& gate, const TensorView& up, const TensorView& out) {
  for (std::int64_t i = 0; i < gate.numel(); ++i) {
    const double g = gate.data_as<const float>()[i];
    out.data_as<float>()[i] = static_cast<float>(g / (1.0 + std::exp(-g)) * up.data_as<const float>()[i]);
  }
}

}  // namespace pagedserve
