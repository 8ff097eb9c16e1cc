// Writes a safetensors file (for tools and tests). Any thread; the views are only read.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "core/tensor_view.h"

namespace pagedserve {

struct NamedTensor {
  std::string name;
  TensorView view;  // CPU, contiguous; dtype f32, bf16, f16 or i32
};

// Writes `tensors` (data ordered by element size, widest first, then in the given order, so every
// tensor is aligned without gaps) after a JSON header (keys sorted, padded with spaces so the
// data starts 8-byte aligned) with "__metadata__" {"format": "pt"} plus `metadata`. The file is
// written to a temporary name and renamed, so readers never see half a file. The same input gives
// the same bytes. Throws SetupError on duplicate names, unsupported views or I/O failure.
void write_safetensors(const std::filesystem::path& path, const std::vector<NamedTensor>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace pagedserve
