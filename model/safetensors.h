// Read-only access to safetensors checkpoints through mmap.
//
// SafetensorsFile maps one file and validates its whole header on open: the 8-byte header length,
// the JSON, every entry's dtype, shape and data_offsets (in range, non-overlapping, size equal to
// numel * dtype size, aligned to the element size). Any violation, including a truncated file,
// throws SetupError naming the file (and the tensor); nothing is read outside the mapping.
// SafetensorsCheckpoint opens a model directory: model.safetensors.index.json (sharded, its
// weight_map checked against the shards), else every *.safetensors file in it.
//
// Ownership: the object owns the mapping; every TensorView it hands out points into it and must
// not outlive it. The memory is mapped read-only: never write through the views. After
// construction the object is immutable, so any thread may read it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/dtype.h"
#include "core/tensor_view.h"
#include "model/safetensors_writer.h"

namespace pagedserve {

// One header entry. `dtype_name` is the file's spelling ("BF16", "I64", ...); `dtype` is set only
// for the dtypes we compute with (BF16, F16, F32).
struct SafetensorsEntry {
  std::string dtype_name;
  bool supported = false;
  DType dtype = DType::f32;
  std::vector<std::int64_t> shape;
  std::size_t begin = 0;  // byte offsets into the data section
  std::size_t end = 0;
};

class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::filesystem::path& path);
  ~SafetensorsFile();
  SafetensorsFile(SafetensorsFile&& other) noexcept;
  SafetensorsFile& operator=(SafetensorsFile&& other) noexcept;
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  bool has(std::string_view name) const;
  // A contiguous CPU view with the file's shape. Throws SetupError when the name is absent or its
  // dtype is not BF16/F16/F32.
  TensorView tensor(std::string_view name) const;
  const SafetensorsEntry& entry(std::string_view name) const;  // throws SetupError when absent
  std::vector<std::string> names() const;                      // sorted
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const std::filesystem::path& path() const { return path_; }

 private:
  void release() noexcept;

  std::filesystem::path path_;
  void* mapping_ = nullptr;
  std::size_t mapping_size_ = 0;
  const std::byte* data_ = nullptr;  // start of the data section (after the header)
  std::map<std::string, SafetensorsEntry, std::less<>> entries_;
  std::map<std::string, std::string> metadata_;
};

class SafetensorsCheckpoint {
 public:
  // `model_dir`: a directory holding model.safetensors.index.json or *.safetensors files.
  explicit SafetensorsCheckpoint(const std::filesystem::path& model_dir);

  bool has(std::string_view name) const;
  TensorView tensor(std::string_view name) const;  // throws SetupError naming the tensor if absent
  const SafetensorsEntry& entry(std::string_view name) const;
  std::vector<std::string> names() const;  // sorted, over all shards
  std::size_t num_files() const { return files_.size(); }

 private:
  const SafetensorsFile& file_of(std::string_view name) const;

  std::filesystem::path dir_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, std::size_t, std::less<>> file_index_;  // tensor name -> index into files_
};

}  // namespace pagedserve
