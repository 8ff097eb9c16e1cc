// AVX2/FMA form of silu_mul (compiled with -mavx2 -mfma -mf16c). Call only when
// cpu_has_avx2_fma_f16c() is true. Internal to kernels/cpu.
#pragma once

#include <cstdint>

namespace pagedserve {

// out[i] = gate[i] / (1 + exp(-gate[i])) * up[i]; `out` may alias `gate`. exp is a polynomial 2^x
// (relative error ~2e-7) with the exponent clamped to +-126, so the result differs from the libm
// form by at most a few ulp, or by less than 1e-36 where gate < -87 (silu is ~0 there).
void silu_mul_avx2(const float* gate,  // [count]
                   const float* up,    // [count]
                   float* out,         // [count]
                   std::int64_t count);

}  // namespace pagedserve
