#include "core/buffer.h"

#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>

#include "core/error.h"

#ifdef PAGEDSERVE_HAVE_CUDA
#include <cuda_runtime.h>
#endif

namespace pagedserve {

namespace {

constexpr std::size_t kCpuAlignment = 64;

#ifdef PAGEDSERVE_HAVE_CUDA
void check_cuda(cudaError_t status, const char* what) {
  if (status != cudaSuccess) throw SetupError(what, cudaGetErrorString(status));
}
#endif

}  // namespace

Buffer::Buffer(std::size_t nbytes, Device device) : nbytes_(nbytes), device_(device) {
  if (nbytes == 0) return;
  if (device == Device::cpu) {
    const std::size_t rounded = (nbytes + kCpuAlignment - 1) / kCpuAlignment * kCpuAlignment;
    data_ = std::aligned_alloc(kCpuAlignment, rounded);
    if (data_ == nullptr) {
      throw SetupError("cpu buffer", "cannot allocate " + std::to_string(nbytes) + " bytes");
    }
    return;
  }
#ifdef PAGEDSERVE_HAVE_CUDA
  check_cuda(cudaMalloc(&data_, nbytes), "cudaMalloc");
#else
  throw SetupError("cuda buffer", "this build has no CUDA backend");
#endif
}

Buffer::~Buffer() { release(); }

Buffer::Buffer(Buffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      nbytes_(std::exchange(other.nbytes_, 0)),
      device_(other.device_) {}

Buffer& Buffer::operator=(Buffer&& other) noexcept {
  if (this != &other) {
    release();
    data_ = std::exchange(other.data_, nullptr);
    nbytes_ = std::exchange(other.nbytes_, 0);
    device_ = other.device_;
  }
  return *this;
}

void Buffer::release() noexcept {
  if (data_ == nullptr) return;
  if (device_ == Device::cpu) {
    std::free(data_);
  } else {
#ifdef PAGEDSERVE_HAVE_CUDA
    cudaFree(data_);
#endif
  }
  data_ = nullptr;
}

TensorView Buffer::view(DType dtype, std::initializer_list<std::int64_t> shape) const {
  TensorView view(data_, dtype, shape, device_);
  if (view.nbytes() > nbytes_) {
    throw SetupError("buffer view", "shape needs " + std::to_string(view.nbytes()) + " bytes, buffer has " +
                                        std::to_string(nbytes_));
  }
  return view;
}

void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, std::size_t nbytes) {
  if (nbytes == 0) return;
  if (dst_device == Device::cpu && src_device == Device::cpu) {
    std::memcpy(dst, src, nbytes);
    return;
  }
#ifdef PAGEDSERVE_HAVE_CUDA
  check_cuda(cudaMemcpy(dst, src, nbytes, cudaMemcpyDefault), "cudaMemcpy");
#else
  throw SetupError("copy_bytes", "this build has no CUDA backend");
#endif
}

bool cuda_compiled_in() noexcept {
#ifdef PAGEDSERVE_HAVE_CUDA
  return true;
#else
  return false;
#endif
}

}  // namespace pagedserve
