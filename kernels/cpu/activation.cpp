#include "kernels/cpu/activation.h"

#include <cassert>
#include <cmath>

namespace pagedserve {

void silu_mul(const TensorView& gate, const TensorView& up, const TensorView& out) {
  const std::int64_t count = gate.numel();
  assert(gate.is_contiguous() && up.is_contiguous() && out.is_contiguous());
  assert(up.numel() == count && out.numel() == count);
  const float* g = gate.data_as<const float>();
  const float* u = up.data_as<const float>();
  float* o = out.data_as<float>();
  for (std::int64_t i = 0; i < count; ++i) o[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
}

}  // namespace pagedserve
