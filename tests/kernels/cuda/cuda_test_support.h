// Device-side helpers for the CUDA kernel tests: skip when no GPU is present, copy a host
// PagedBatch to the device, run a kernel there and bring the output back. Tests only; one
// thread. Every CUDA call is checked (a failure fails the test by throwing).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/buffer.h"
#include "kernels/attention.h"
#include "tests/kernels/paged_batch_fixture.h"

namespace pagedserve::testing {

inline void cuda_ok(cudaError_t status, const char* what) {
  if (status != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(status));
}

// True when a CUDA device can be used (CI has nvcc but no GPU: tests skip there).
inline bool cuda_device_present() {
  int count = 0;
  return cudaGetDeviceCount(&count) == cudaSuccess && count > 0;
}

template <typename T>
Buffer to_device(const std::vector<T>& host) {
  Buffer buffer(std::max<std::size_t>(host.size() * sizeof(T), 16), Device::cuda);
  copy_bytes(buffer.data(), Device::cuda, host.data(), Device::cpu, host.size() * sizeof(T));
  return buffer;
}

// The batch's tensors on the device; `out` starts as the batch's all-NaN output.
class DeviceBatch {
 public:
  explicit DeviceBatch(PagedBatch& batch)
      : batch_(batch),
        q_(to_device(batch.q())),
        k_(to_device(batch.k_cache())),
        v_(to_device(batch.v_cache())),
        block_table_(to_device(batch.block_table())),
        seq_lens_(to_device(batch.seq_lens())),
        query_start_len_(to_device(batch.query_start_len())),
        out_(to_device(batch.make_output())) {}

  PagedAttentionArgs args() const {
    std::vector<std::uint8_t> unused;
    PagedAttentionArgs host = batch_.args(unused);
    PagedAttentionArgs a = host;
    a.q = on_device(host.q, q_);
    a.k_cache = on_device(host.k_cache, k_);
    a.v_cache = on_device(host.v_cache, v_);
    a.block_table = on_device(host.block_table, block_table_);
    a.seq_lens = on_device(host.seq_lens, seq_lens_);
    a.query_start_len = on_device(host.query_start_len, query_start_len_);
    a.out = on_device(host.q, out_);
    return a;
  }

  std::vector<std::uint8_t> output() const {
    std::vector<std::uint8_t> host(batch_.q().size());
    copy_bytes(host.data(), Device::cpu, out_.data(), Device::cuda, host.size());
    return host;
  }

  // Raw device metadata, for tests that rewrite it between graph replays.
  int* seq_lens() const { return static_cast<int*>(seq_lens_.data()); }
  int* query_start_len() const { return static_cast<int*>(query_start_len_.data()); }

 private:
  static TensorView on_device(const TensorView& host, const Buffer& buffer) {
    std::int64_t shape[TensorView::kMaxRank] = {};
    for (int d = 0; d < host.rank(); ++d) shape[d] = host.size(d);
    switch (host.rank()) {
      case 1: return TensorView(buffer.data(), host.dtype(), {shape[0]}, Device::cuda);
      case 2: return TensorView(buffer.data(), host.dtype(), {shape[0], shape[1]}, Device::cuda);
      default: return TensorView(buffer.data(), host.dtype(), {shape[0], shape[1], shape[2], shape[3]}, Device::cuda);
    }
  }

  PagedBatch& batch_;
  Buffer q_, k_, v_, block_table_, seq_lens_, query_start_len_, out_;
};

}  // namespace pagedserve::testing
