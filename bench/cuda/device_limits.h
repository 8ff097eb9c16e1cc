// What the GPU itself can do, measured in the benchmark's own run: the floors the model bench
// compares against. Any thread; each call synchronises the device.
#pragma once

namespace pagedserve {

// Bytes per second a streaming read of a `bytes` buffer reaches (median of `repeats`, each read
// larger than L2 so nothing is served from it).
double measure_device_read_bandwidth(double bytes = 4e9, int repeats = 10);

// bf16 GEMM (m = n = k = `size`, f32 accumulate, cuBLAS) in FLOP/s, median of `repeats`.
double measure_gemm_flops(int size = 8192, int repeats = 10);

// Seconds of one y[m, n] = x[m, k] w[n, k]^T through CublasGemm (bf16 in, `f32_out` or bf16 out),
// median of `repeats`, w larger than L2 is re-read each time (what a decode step's GEMMs do).
// skinny_max_rows as CublasGemm::set_skinny_max_rows (0: cuBLAS only).
double measure_gemm_seconds(int m, int n, int k, bool f32_out, int skinny_max_rows, int repeats = 20);

}  // namespace pagedserve
