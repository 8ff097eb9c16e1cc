// PAGEDSERVE_CPU_KERNEL: forces one CPU kernel family for every matmul (and the attention ISA)
// instead of the automatic choice, to measure or test one path on a machine that has several:
//   portable | avx2 | avx512 | avx512bf16 | panel | amx | sgemm   (unset, empty or "auto": automatic)
// A path the CPU cannot run falls back as the explicit MatmulPath values do (matmul.h). An unknown
// value is an error at first use (std::invalid_argument naming the accepted values), never ignored.
// Read once per process; any thread.
#pragma once

#include <string>

namespace pagedserve {

enum class CpuKernelOverride { none, portable, avx2, avx512, avx512bf16, panel, amx, sgemm };

CpuKernelOverride cpu_kernel_override();

// One line for the start-up log: the matmul kernels this CPU runs per weight dtype and the
// override, e.g. "bf16 weights: AVX512_BF16 dot products; f16/f32 weights: AVX-512 FMA (CPU: avx2
// avx512 avx512bf16); PAGEDSERVE_CPU_KERNEL unset". Throws as cpu_kernel_override() does.
std::string describe_cpu_kernels();

// Parses a PAGEDSERVE_CPU_KERNEL value (nullptr: none); throws std::invalid_argument on others.
CpuKernelOverride parse_cpu_kernel_override(const char* value);

}  // namespace pagedserve
