// CPU feature checks for the run-time kernel dispatch that GCC and clang both compile: clang 14's
// __builtin_cpu_supports rejects "f16c", "amx-tile" and "amx-bf16" (the fuzz build, tests/fuzz,
// uses clang), so those bits are read from CPUID here. Pure; any thread.
#pragma once

#include <cpuid.h>

namespace pagedserve {

// F16C: CPUID.1:ECX bit 29. Callers also check AVX2, whose check includes the OS saving YMM state.
inline bool cpu_has_f16c() noexcept {
  unsigned a = 0, b = 0, c = 0, d = 0;
  return __get_cpuid(1, &a, &b, &c, &d) != 0 && (c & (1u << 29)) != 0;
}

// AVX512_BF16 (vdpbf16ps, vcvtne2ps2bf16): CPUID.(7,1):EAX bit 5. Callers also check AVX512F/BW/VL,
// whose checks include the OS saving ZMM state.
inline bool cpu_has_avx512bf16_bit() noexcept {
  unsigned a = 0, b = 0, c = 0, d = 0;
  return __get_cpuid_count(7, 1, &a, &b, &c, &d) != 0 && (a & (1u << 5)) != 0;
}

// AMD family 19h (Zen 3 and Zen 4): Zen 4 runs each 512-bit FMA as two 256-bit halves, and the
// FMA dot kernels measured faster in their AVX2 form there at every M (bench/RESULTS.md), so the
// matmul prefers AVX2 for its FMA paths on these CPUs (AVX-512 still for vdpbf16ps and packing).
inline bool cpu_is_amd_family_19h() noexcept {
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (__get_cpuid(0, &a, &b, &c, &d) == 0) return false;
  const bool amd = b == 0x68747541u && d == 0x69746e65u && c == 0x444d4163u;  // "AuthenticAMD"
  if (!amd || __get_cpuid(1, &a, &b, &c, &d) == 0) return false;
  const unsigned family = ((a >> 8) & 0xfu) + ((a >> 20) & 0xffu);
  return family == 0x19u;
}

// AMX-TILE and AMX-BF16: CPUID.(7,0):EDX bits 24 and 22. The OS side (tile state) is granted or
// refused by arch_prctl(ARCH_REQ_XCOMP_PERM), which the AMX matmul asks before using tiles.
inline bool cpu_has_amx_bf16() noexcept {
  unsigned a = 0, b = 0, c = 0, d = 0;
  return __get_cpuid_count(7, 0, &a, &b, &c, &d) != 0 && (d & (1u << 24)) != 0 && (d & (1u << 22)) != 0;
}

}  // namespace pagedserve
