#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench/cuda/device_limits.h"
#include "core/buffer.h"
#include "kernels/cuda/gemm_cuda.h"

namespace pagedserve {
namespace {

void ok(cudaError_t status, const char* what) {
  if (status != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(status));
}

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

template <typename Body>
double median_seconds(int repeats, Body&& body) {
  cudaEvent_t start, stop;
  ok(cudaEventCreate(&start), "cudaEventCreate");
  ok(cudaEventCreate(&stop), "cudaEventCreate");
  body();  // warm-up
  std::vector<double> times;
  for (int r = 0; r < repeats; ++r) {
    ok(cudaEventRecord(start), "cudaEventRecord");
    body();
    ok(cudaEventRecord(stop), "cudaEventRecord");
    ok(cudaEventSynchronize(stop), "cudaEventSynchronize");
    float ms = 0;
    ok(cudaEventElapsedTime(&ms, start, stop), "cudaEventElapsedTime");
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
  ok(cudaMemset(data.data(), 1, data.nbytes()), "cudaMemset");
  int sms = 0;
  ok(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0), "cudaDeviceGetAttribute");
  const double seconds = median_seconds(repeats, [&] {
    read_all<<<sms * 8, 512>>>(static_cast<const uint4*>(data.data()), words,
                               static_cast<unsigned*>(sink.data()));
  });
  return static_cast<double>(words * sizeof(uint4)) / seconds;
}

double measure_gemm_flops(int size, int repeats) {
  const std::size_t elements = static_cast<std::size_t>(size) * size;
  Buffer a(elements * 2, Device::cuda), b(elements * 2, Device::cuda), c(elements * 2, Device::cuda);
  ok(cudaMemset(a.data(), 0x3c, a.nbytes()), "cudaMemset");  // bf16 0x3c3c: nonzero, like real data
  ok(cudaMemset(b.data(), 0x3c, b.nbytes()), "cudaMemset");
  CublasGemm gemm(nullptr);
  const double seconds = median_seconds(repeats, [&] {
    gemm.matmul(a.data(), b.data(), c.data(), DType::bf16, DType::bf16, size, size, size);
  });
  return 2.0 * static_cast<double>(size) * size * size / seconds;
}

}  // namespace pagedserve
