#include "kernels/cpu/activation.h"

#include <cassert>
#include <cmath>

#include "kernels/cpu/activation_avx2.h"
#include "kernels/cpu/kernel_override.h"
#include "kernels/cpu/matmul.h"

namespace pagedserve {

namespace {

void check_shapes(const TensorView& gate, const TensorView& up, const TensorView& out) {
  assert(gate.is_contiguous() && up.is_contiguous() && out.is_contiguous());
  assert(up.numel() == gate.numel() && out.numel() == gate.numel());
  (void)gate, (void)up, (void)out;
}

}  // namespace

void silu_mul(const TensorView& gate, const TensorView& up, const TensorView& out) {
  static const bool vector = cpu_has_avx2_fma_f16c() && cpu_kernel_override() != CpuKernelOverride::portable;
  if (!vector) {
    silu_mul_portable(gate, up, out);
    return;
  }
  check_shapes(gate, up, out);
  silu_mul_avx2(gate.data_as<const float>(), up.data_as<const float>(), out.data_as<float>(), gate.numel());
}

void silu_mul_portable(const TensorView& gate, const TensorView& up, const TensorView& out) {
  check_shapes(gate, up, out);
  const std::int64_t count = gate.numel();
  const float* g = gate.data_as<const float>();
  const float* u = up.data_as<const float>();
  float* o = out.data_as<float>();
  for (std::int64_t i = 0; i < count; ++i) o[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
}

}  // namespace pagedserve
