// A non-owning view of a strided tensor: pointer, dtype, device, shape, strides (in elements).
// Views are cheap values; whoever created the memory (a Buffer, an mmap) owns it and must outlive
// every view of it. Any thread may read a view; writes through it follow the owner's rules.
#pragma once

#include <array>
#include <cassert>
#include <cstdint>
#include <initializer_list>
#include <span>

#include "core/dtype.h"

namespace pagedserve {

class TensorView {
 public:
  static constexpr int kMaxRank = 6;

  TensorView() = default;

  // A row-major (contiguous) view of `shape` over `data`.
  TensorView(void* data, DType dtype, std::initializer_list<std::int64_t> shape, Device device = Device::cpu)
      : TensorView(data, dtype, std::span<const std::int64_t>(shape.begin(), shape.size()), device) {}

  // The same with a shape known only at run time (e.g. read from a file); rank <= kMaxRank.
  TensorView(void* data, DType dtype, std::span<const std::int64_t> shape, Device device = Device::cpu)
      : data_(data), dtype_(dtype), device_(device), rank_(static_cast<int>(shape.size())) {
    assert(rank_ <= kMaxRank);
    for (int d = 0; d < rank_; ++d) shape_[d] = shape[d];
    std::int64_t stride = 1;
    for (int i = rank_ - 1; i >= 0; --i) {
      strides_[i] = stride;
      stride *= shape_[i];
    }
  }

  void* data() const noexcept { return data_; }
  template <typename T>
  T* data_as() const noexcept {
    return static_cast<T*>(data_);
  }
  DType dtype() const noexcept { return dtype_; }
  Device device() const noexcept { return device_; }
  int rank() const noexcept { return rank_; }
  std::int64_t size(int dim) const noexcept { return shape_[dim]; }
  std::int64_t stride(int dim) const noexcept { return strides_[dim]; }

  std::int64_t numel() const noexcept {
    std::int64_t n = 1;
    for (int i = 0; i < rank_; ++i) n *= shape_[i];
    return n;
  }
  std::size_t nbytes() const noexcept { return static_cast<std::size_t>(numel()) * dtype_size(dtype_); }

  bool is_contiguous() const noexcept {
    std::int64_t expected = 1;
    for (int i = rank_ - 1; i >= 0; --i) {
      if (shape_[i] != 1 && strides_[i] != expected) return false;
      expected *= shape_[i];
    }
    return true;
  }

  // The same memory with a new contiguous shape of equal element count.
  TensorView reshaped(std::initializer_list<std::int64_t> shape) const {
    assert(is_contiguous());
    TensorView view(data_, dtype_, shape, device_);
    assert(view.numel() == numel());
    return view;
  }

  // Columns [begin, end) of a 2-D view; rows keep their stride.
  TensorView slice_columns(std::int64_t begin, std::int64_t end) const noexcept {
    assert(rank_ == 2 && begin <= end && end <= shape_[1]);
    TensorView view = *this;
    view.data_ = static_cast<char*>(data_) +
                 static_cast<std::ptrdiff_t>(begin * strides_[1]) * static_cast<std::ptrdiff_t>(dtype_size(dtype_));
    view.shape_[1] = end - begin;
    return view;
  }

  // Rows [begin, end) of the first dimension.
  TensorView slice_rows(std::int64_t begin, std::int64_t end) const noexcept {
    TensorView view = *this;
    view.data_ = static_cast<char*>(data_) +
                 static_cast<std::ptrdiff_t>(begin * strides_[0]) * static_cast<std::ptrdiff_t>(dtype_size(dtype_));
    view.shape_[0] = end - begin;
    return view;
  }

 private:
  void* data_ = nullptr;
  DType dtype_ = DType::f32;
  Device device_ = Device::cpu;
  int rank_ = 0;
  std::array<std::int64_t, kMaxRank> shape_{};
  std::array<std::int64_t, kMaxRank> strides_{};
};

}  // namespace pagedserve
