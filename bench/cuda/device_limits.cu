#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench/cuda/device_limits.h"
#include "core/buffer.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/gemm_cuda.h"

namespace pagedserve {
namespace {

using cuda_detail::check_cuda;

// Sums 16-byte words so the loads cannot be dropped; one write per block.
__global__ void read_all(const uint4* data, std::size_t words, unsigned* sink) {
  unsigned acc = 0;
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < words;
       i += std::size_t(gridDim.x) * blockDim.x) {
    const uint4 v = data[i];
    acc ^= v.x ^ v.y ^ v.z ^ v.w;
  }
  if (acc == 0x12345678u) sink[blockIdx.x] = acc;
}

// bf16 values spread like activations (|x| in [2^-4, 2^4), random sign and mantissa): a GEMM on
// constant or zero data draws less power and clocks higher than on real data.
__global__ void fill_random_bf16(unsigned short* data, std::size_t count, unsigned seed) {
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < count;
       i += std::size_t(gridDim.x) * blockDim.x) {
    unsigned h = static_cast<unsigned>(i) * 0x9E3779B1u ^ seed;
    h ^= h >> 15;
    h *= 0x2C1B3C6Du;
    h ^= h >> 12;
    const unsigned exponent = 123u + (h >> 29);  // 2^-4 .. 2^3
    data[i] = static_cast<unsigned short>(((h & 1u) << 15) | (exponent << 7) | ((h >> 8) & 0x7Fu));
  }
}

template <typename Body>
double median_seconds(int repeats, Body&& body) {
  cudaEvent_t start, stop;
  check_cuda(cudaEventCreate(&start), "cudaEventCreate");
  check_cuda(cudaEventCreate(&stop), "cudaEventCreate");
  body();  // warm-up
  std::vector<double> times;
  for (int r = 0; r < repeats; ++r) {
    check_cuda(cudaEventRecord(start), "cudaEventRecord");
    body();
    check_cuda(cudaEventRecord(stop), "cudaEventRecord");
    check_cuda(cudaEventSynchronize(stop), "cudaEventSynchronize");
    float ms = 0;
    check_cuda(cudaEventElapsedTime(&ms, start, stop), "cudaEventElapsedTime");
    times.push_back(ms / 1e3);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

}  // namespace

double measure_device_read_bandwidth(double bytes, int repeats) {
  const std::size_t words = static_cast<std::size_t>(bytes) / sizeof(uint4);
  Buffer data(words * sizeof(uint4), Device::cuda);
  Buffer sink(4096 * sizeof(unsigned), Device::cuda);
  check_cuda(cudaMemset(data.data(), 1, data.nbytes()), "cudaMemset");
  int sms = 0;
  check_cuda(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0), "cudaDeviceGetAttribute");
  const double seconds = median_seconds(repeats, [&] {
    read_all<<<sms * 8, 512>>>(static_cast<const uint4*>(data.data()), words,
                               static_cast<unsigned*>(sink.data()));
  });
  return static_cast<double>(words * sizeof(uint4)) / seconds;
}

double measure_gemm_flops(int size, int repeats) {
  const std::size_t elements = static_cast<std::size_t>(size) * size;
  Buffer a(elements * 2, Device::cuda), b(elements * 2, Device::cuda), c(elements * 2, Device::cuda);
  fill_random_bf16<<<1024, 256>>>(static_cast<unsigned short*>(a.data()), elements, 1u);
  fill_random_bf16<<<1024, 256>>>(static_cast<unsigned short*>(b.data()), elements, 2u);
  check_cuda(cudaGetLastError(), "fill_random_bf16");
  CublasGemm gemm(nullptr);
  const double seconds = median_seconds(repeats, [&] {
    gemm.matmul(a.data(), b.data(), c.data(), DType::bf16, DType::bf16, size, size, size);
  });
  return 2.0 * static_cast<double>(size) * size * size / seconds;
}

double measure_gemm_seconds(int m, int n, int k, bool f32_out, int skinny_max_rows, int repeats) {
  Buffer x(static_cast<std::size_t>(m) * k * 2, Device::cuda),
      w(static_cast<std::size_t>(n) * k * 2, Device::cuda);
  Buffer y(static_cast<std::size_t>(m) * n * 4, Device::cuda);
  fill_random_bf16<<<1024, 256>>>(static_cast<unsigned short*>(x.data()), static_cast<std::size_t>(m) * k,
                                  3u);
  fill_random_bf16<<<1024, 256>>>(static_cast<unsigned short*>(w.data()), static_cast<std::size_t>(n) * k,
                                  4u);
  check_cuda(cudaGetLastError(), "fill_random_bf16");
  CublasGemm gemm(nullptr);
  gemm.set_skinny_max_rows(skinny_max_rows);
  return median_seconds(repeats, [&] {
    gemm.matmul(x.data(), w.data(), y.data(), DType::bf16, f32_out ? DType::f32 : DType::bf16, m, n, k);
  });
}

}  // namespace pagedserve
