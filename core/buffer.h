// An owning, move-only block of memory on the CPU (64-byte aligned) or a CUDA device.
// Owned by whoever created it; destroyed on the thread that owns it. Allocation failure throws
// SetupError (buffers are made at startup, not per request).
#pragma once

#include <cstddef>
#include <initializer_list>

#include "core/dtype.h"
#include "core/tensor_view.h"

namespace pagedserve {

class Buffer {
 public:
  Buffer() = default;
  Buffer(std::size_t nbytes, Device device);
  ~Buffer();
  Buffer(Buffer&& other) noexcept;
  Buffer& operator=(Buffer&& other) noexcept;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  void* data() const noexcept { return data_; }
  std::size_t nbytes() const noexcept { return nbytes_; }
  Device device() const noexcept { return device_; }

  // A contiguous view of the start of the buffer; the shape must fit in it.
  TensorView view(DType dtype, std::initializer_list<std::int64_t> shape) const;

 private:
  void release() noexcept;

  void* data_ = nullptr;
  std::size_t nbytes_ = 0;
  Device device_ = Device::cpu;
};

// Copies between any two devices (host <-> device, device <-> device). Synchronous.
void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, std::size_t nbytes);

// True when this build has the CUDA backend compiled in.
bool cuda_compiled_in() noexcept;

}  // namespace pagedserve
