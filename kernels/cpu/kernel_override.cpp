#include "kernels/cpu/kernel_override.h"

#include <cstdlib>
#include <stdexcept>
#include <string>

#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/matmul_amx.h"
#include "kernels/cpu/matmul_avx512.h"
#include "kernels/cpu/matmul_avx512bf16.h"

namespace pagedserve {

CpuKernelOverride parse_cpu_kernel_override(const char* value) {
  if (value == nullptr) return CpuKernelOverride::none;
  const std::string name = value;
  if (name.empty() || name == "auto") return CpuKernelOverride::none;
  if (name == "portable") return CpuKernelOverride::portable;
  if (name == "avx2") return CpuKernelOverride::avx2;
  if (name == "avx512") return CpuKernelOverride::avx512;
  if (name == "avx512bf16") return CpuKernelOverride::avx512bf16;
  if (name == "panel") return CpuKernelOverride::panel;
  if (name == "amx") return CpuKernelOverride::amx;
  if (name == "sgemm") return CpuKernelOverride::sgemm;
  throw std::invalid_argument("PAGEDSERVE_CPU_KERNEL='" + name +
                              "' is not one of auto, portable, avx2, avx512, avx512bf16, panel, amx, sgemm");
}

CpuKernelOverride cpu_kernel_override() {
  static const CpuKernelOverride chosen = parse_cpu_kernel_override(std::getenv("PAGEDSERVE_CPU_KERNEL"));
  return chosen;
}

std::string describe_cpu_kernels() {
  const CpuKernelOverride forced = cpu_kernel_override();
  const bool avx2 = cpu_has_avx2_fma_f16c(), avx512 = avx2 && cpu_has_avx512();
  const bool bf16_dot = avx512 && cpu_has_avx512_bf16(), amx = amx_bf16_usable();
  const std::string fma = avx512 ? std::string(cpu_is_amd_family_19h() ? "AVX2" : "AVX-512") +
                                       " FMA dot products, AVX-512 FMA panels for prefill"
                          : avx2 ? "AVX2 FMA dot products, OpenBLAS sgemm for prefill"
                                 : "portable dot products, OpenBLAS sgemm for prefill";
  std::string line = "bf16 weights: ";
  if (amx) line += "AMX tiles from 2 rows, ";
  line += bf16_dot ? "AVX512_BF16 dot products, bf16-pair panels for prefill" : fma;
  line += "; f16/f32 weights: " + fma + " (CPU:";
  if (avx2) line += " avx2";
  if (avx512) line += " avx512";
  if (bf16_dot) line += " avx512bf16";
  if (amx) line += " amx";
  if (!avx2) line += " no avx2";
  line += "); PAGEDSERVE_CPU_KERNEL ";
  if (forced == CpuKernelOverride::none) return line + "unset";
  return line + "= " + std::getenv("PAGEDSERVE_CPU_KERNEL") + " (forced)";
}

}  // namespace pagedserve
