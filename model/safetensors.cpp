#include "model/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <span>
#include <optional>
#include <set>
#include <sstream>
#include <system_error>
#include <utility>

#include "core/error.h"

namespace pagedserve {
namespace {

using nlohmann::json;

// The spec's limit; a larger length is a corrupt file, not a big model.
constexpr std::uint64_t kMaxHeaderBytes = 100ull << 20;

struct DTypeSpelling {
  const char* name;
  std::size_t size;
  std::optional<DType> dtype;  // set for the dtypes we compute with
};

constexpr DTypeSpelling kDTypes[] = {
    {"BF16", 2, DType::bf16},  {"F16", 2, DType::f16},       {"F32", 4, DType::f32},
    {"F64", 8, std::nullopt},  {"I64", 8, std::nullopt},     {"U64", 8, std::nullopt},
    {"I32", 4, std::nullopt},  {"U32", 4, std::nullopt},     {"I16", 2, std::nullopt},
    {"U16", 2, std::nullopt},  {"I8", 1, std::nullopt},      {"U8", 1, std::nullopt},
    {"BOOL", 1, std::nullopt}, {"F8_E4M3", 1, std::nullopt}, {"F8_E5M2", 1, std::nullopt},
};

const DTypeSpelling* find_dtype(const std::string& name) {
  for (const DTypeSpelling& spelling : kDTypes) {
    if (name == spelling.name) return &spelling;
  }
  return nullptr;
}

std::uint64_t non_negative_integer(const json& value, const std::string& subject, const char* what) {
  if (!value.is_number_integer()) throw SetupError(subject, std::string(what) + " must be integers");
  if (value.is_number_unsigned()) return value.get<std::uint64_t>();
  const auto number = value.get<std::int64_t>();
  if (number < 0) throw SetupError(subject, std::string(what) + " must not be negative");
  return static_cast<std::uint64_t>(number);
}

SafetensorsEntry parse_entry(const std::string& name, const json& value, const std::string& file,
                             std::size_t data_size, std::size_t data_start) {
  const std::string subject = file + ": tensor '" + name + "'";
  if (name.empty()) throw SetupError(file, "a tensor has an empty name");
  if (!value.is_object()) throw SetupError(subject, "header entry is not an object");
  const auto dtype_it = value.find("dtype");
  const auto shape_it = value.find("shape");
  const auto offsets_it = value.find("data_offsets");
  if (dtype_it == value.end() || !dtype_it->is_string()) throw SetupError(subject, "missing string 'dtype'");
  if (shape_it == value.end() || !shape_it->is_array()) throw SetupError(subject, "missing list 'shape'");
  if (offsets_it == value.end() || !offsets_it->is_array() || offsets_it->size() != 2) {
    throw SetupError(subject, "'data_offsets' must be a list of two integers");
  }

  SafetensorsEntry entry;
  entry.dtype_name = dtype_it->get<std::string>();
  const DTypeSpelling* spelling = find_dtype(entry.dtype_name);
  if (spelling == nullptr) throw SetupError(subject, "unknown dtype '" + entry.dtype_name + "'");
  entry.supported = spelling->dtype.has_value();
  if (entry.supported) entry.dtype = *spelling->dtype;

  if (shape_it->size() > static_cast<std::size_t>(TensorView::kMaxRank)) {
    throw SetupError(subject, "rank " + std::to_string(shape_it->size()) + " above " +
                                  std::to_string(TensorView::kMaxRank));
  }
  std::uint64_t numel = 1;
  for (const json& extent : *shape_it) {
    const std::uint64_t n = non_negative_integer(extent, subject, "shape extents");
    if (n > static_cast<std::uint64_t>(INT64_MAX) || __builtin_mul_overflow(numel, n, &numel)) {
      throw SetupError(subject, "shape overflows");
    }
    entry.shape.push_back(static_cast<std::int64_t>(n));
  }
  std::uint64_t nbytes = 0;
  if (__builtin_mul_overflow(numel, static_cast<std::uint64_t>(spelling->size), &nbytes)) {
    throw SetupError(subject, "shape overflows");
  }

  const std::uint64_t begin = non_negative_integer((*offsets_it)[0], subject, "data_offsets");
  const std::uint64_t end = non_negative_integer((*offsets_it)[1], subject, "data_offsets");
  if (begin > end) throw SetupError(subject, "data_offsets begin > end");
  if (end > data_size) {
    throw SetupError(subject, "data_offsets end " + std::to_string(end) + " beyond the data section (" +
                                  std::to_string(data_size) + " bytes; file truncated?)");
  }
  if (end - begin != nbytes) {
    throw SetupError(subject, "data_offsets span " + std::to_string(end - begin) + " bytes but shape x " +
                                  entry.dtype_name + " needs " + std::to_string(nbytes));
  }
  if ((data_start + begin) % spelling->size != 0) {
    throw SetupError(subject, "data not aligned to its element size");
  }
  entry.begin = static_cast<std::size_t>(begin);
  entry.end = static_cast<std::size_t>(end);
  return entry;
}

std::string read_text_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw SetupError(path.string(), "cannot open");
  std::ostringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

}  // namespace

SafetensorsFile::SafetensorsFile(const std::filesystem::path& path) : path_(path) {
  const std::string file = path.string();
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw SetupError(file, std::string("cannot open: ") + std::strerror(errno));
  struct stat info {};
  if (::fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
    ::close(fd);
    throw SetupError(file, "not a regular file");
  }
  const auto file_size = static_cast<std::size_t>(info.st_size);
  if (file_size < 8) {
    ::close(fd);
    throw SetupError(file, "too short (" + std::to_string(file_size) + " bytes) for a safetensors header");
  }
  void* mapping = ::mmap(nullptr, file_size, PROT_READ, MAP_PRIVATE, fd, 0);
  const int mmap_errno = errno;
  ::close(fd);
  if (mapping == MAP_FAILED) throw SetupError(file, std::string("mmap failed: ") + std::strerror(mmap_errno));
  mapping_ = mapping;
  mapping_size_ = file_size;

  try {
    const auto* bytes = static_cast<const unsigned char*>(mapping_);
    std::uint64_t header_size = 0;
    for (int i = 7; i >= 0; --i) header_size = (header_size << 8) | bytes[i];  // little-endian
    if (header_size == 0 || header_size > kMaxHeaderBytes) {
      throw SetupError(file, "implausible header length " + std::to_string(header_size));
    }
    if (header_size > file_size - 8) {
      throw SetupError(file, "header length " + std::to_string(header_size) + " exceeds the file (" +
                                 std::to_string(file_size) + " bytes; truncated?)");
    }
    const auto* header_begin = reinterpret_cast<const char*>(bytes + 8);
    const json header = json::parse(header_begin, header_begin + header_size, nullptr, false);
    if (header.is_discarded()) throw SetupError(file, "header is not valid JSON");
    if (!header.is_object()) throw SetupError(file, "header is not a JSON object");

    const std::size_t data_start = 8 + static_cast<std::size_t>(header_size);
    const std::size_t data_size = file_size - data_start;
    data_ = static_cast<const std::byte*>(mapping_) + data_start;
    for (const auto& [name, value] : header.items()) {
      if (name == "__metadata__") {
        if (!value.is_object()) throw SetupError(file, "__metadata__ is not an object");
        for (const auto& [key, item] : value.items()) {
          metadata_[key] = item.is_string() ? item.get<std::string>() : item.dump();
        }
        continue;
      }
      entries_.emplace(name, parse_entry(name, value, file, data_size, data_start));
    }

    std::vector<const std::pair<const std::string, SafetensorsEntry>*> by_offset;
    for (const auto& item : entries_) {
      if (item.second.end > item.second.begin) by_offset.push_back(&item);
    }
    std::sort(by_offset.begin(), by_offset.end(),
              [](const auto* a, const auto* b) { return a->second.begin < b->second.begin; });
    for (std::size_t i = 1; i < by_offset.size(); ++i) {
      if (by_offset[i]->second.begin < by_offset[i - 1]->second.end) {
        throw SetupError(
            file, "tensors '" + by_offset[i - 1]->first + "' and '" + by_offset[i]->first + "' overlap");
      }
    }
  } catch (...) {
    release();
    throw;
  }
}

SafetensorsFile::~SafetensorsFile() { release(); }

SafetensorsFile::SafetensorsFile(SafetensorsFile&& other) noexcept
    : path_(std::move(other.path_)),
      mapping_(std::exchange(other.mapping_, nullptr)),
      mapping_size_(std::exchange(other.mapping_size_, 0)),
      data_(std::exchange(other.data_, nullptr)),
      entries_(std::move(other.entries_)),
      metadata_(std::move(other.metadata_)) {}

SafetensorsFile& SafetensorsFile::operator=(SafetensorsFile&& other) noexcept {
  if (this != &other) {
    release();
    path_ = std::move(other.path_);
    mapping_ = std::exchange(other.mapping_, nullptr);
    mapping_size_ = std::exchange(other.mapping_size_, 0);
    data_ = std::exchange(other.data_, nullptr);
    entries_ = std::move(other.entries_);
    metadata_ = std::move(other.metadata_);
  }
  return *this;
}

void SafetensorsFile::release() noexcept {
  if (mapping_ != nullptr) ::munmap(mapping_, mapping_size_);
  mapping_ = nullptr;
  mapping_size_ = 0;
  data_ = nullptr;
}

bool SafetensorsFile::has(std::string_view name) const { return entries_.find(name) != entries_.end(); }

const SafetensorsEntry& SafetensorsFile::entry(std::string_view name) const {
  const auto it = entries_.find(name);
  if (it == entries_.end()) throw SetupError(path_.string(), "no tensor named '" + std::string(name) + "'");
  return it->second;
}

TensorView SafetensorsFile::tensor(std::string_view name) const {
  const SafetensorsEntry& found = entry(name);
  if (!found.supported) {
    throw SetupError(path_.string() + ": tensor '" + std::string(name) + "'",
                     "dtype " + found.dtype_name + " is not supported (BF16, F16, F32 are)");
  }
  // The mapping is read-only; the view's non-const pointer must never be written through.
  void* data = const_cast<std::byte*>(data_ + found.begin);
  if (found.shape.size() > static_cast<std::size_t>(TensorView::kMaxRank)) {
    throw SetupError("tensor", "rank above " + std::to_string(TensorView::kMaxRank));
  }
  return TensorView(data, found.dtype, std::span<const std::int64_t>(found.shape));
}

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> result;
  result.reserve(entries_.size());
  for (const auto& item : entries_) result.push_back(item.first);
  return result;
}

SafetensorsCheckpoint::SafetensorsCheckpoint(const std::filesystem::path& model_dir) : dir_(model_dir) {
  std::error_code dir_error;  // a path the OS refuses reads as neither a file nor a directory
  if (std::filesystem::is_regular_file(model_dir, dir_error)) {
    files_.push_back(std::make_unique<SafetensorsFile>(model_dir));
    for (const std::string& name : files_.back()->names()) file_index_.emplace(name, 0);
    return;
  }
  if (!std::filesystem::is_directory(model_dir, dir_error)) {
    throw SetupError(model_dir.string(), "not a directory" + (dir_error ? " (" + dir_error.message() + ")" : ""));
  }

  const std::filesystem::path index_path = model_dir / "model.safetensors.index.json";
  std::error_code index_error;
  if (std::filesystem::exists(index_path, index_error)) {
    const std::string index_file = index_path.string();
    const json index = json::parse(read_text_file(index_path), nullptr, false);
    if (index.is_discarded() || !index.is_object()) throw SetupError(index_file, "not a JSON object");
    const auto map_it = index.find("weight_map");
    if (map_it == index.end() || !map_it->is_object())
      throw SetupError(index_file, "missing object 'weight_map'");
    std::map<std::string, std::size_t> shard_index;  // shard file name -> index into files_
    for (const auto& [name, shard] : map_it->items()) {
      if (!shard.is_string()) throw SetupError(index_file, "weight_map['" + name + "'] is not a file name");
      const std::string shard_name = shard.get<std::string>();
      if (shard_name.empty() || shard_name.find('/') != std::string::npos || shard_name == "." ||
          shard_name == "..") {
        throw SetupError(index_file,
                         "weight_map['" + name + "'] names an invalid shard '" + shard_name + "'");
      }
      auto [it, inserted] = shard_index.emplace(shard_name, files_.size());
      if (inserted) {
        const std::filesystem::path shard_path = model_dir / shard_name;
        // The error_code overload: a name the OS refuses (too long, ...) is a missing shard,
        // not a filesystem_error escaping the loader (found by tests/fuzz/safetensors_fuzz).
        std::error_code error;
        if (!std::filesystem::exists(shard_path, error)) {
          throw SetupError(index_file, "shard '" + shard_name + "' (for tensor '" + name + "') not found" +
                                           (error ? " (" + error.message() + ")" : ""));
        }
        files_.push_back(std::make_unique<SafetensorsFile>(shard_path));
      }
      if (!files_[it->second]->has(name)) {
        throw SetupError(index_file, "tensor '" + name + "' is mapped to '" + shard_name + "' but not in it");
      }
      file_index_.emplace(name, it->second);
    }
    return;
  }

  std::vector<std::filesystem::path> paths;
  for (const auto& item : std::filesystem::directory_iterator(model_dir)) {
    if (item.is_regular_file() && item.path().extension() == ".safetensors") paths.push_back(item.path());
  }
  if (paths.empty()) {
    throw SetupError(model_dir.string(), "no model.safetensors.index.json and no *.safetensors file");
  }
  std::sort(paths.begin(), paths.end());
  for (const auto& path : paths) {
    files_.push_back(std::make_unique<SafetensorsFile>(path));
    for (const std::string& name : files_.back()->names()) {
      if (!file_index_.emplace(name, files_.size() - 1).second) {
        throw SetupError(path.string(), "tensor '" + name + "' also appears in another file");
      }
    }
  }
}

const SafetensorsFile& SafetensorsCheckpoint::file_of(std::string_view name) const {
  const auto it = file_index_.find(name);
  if (it == file_index_.end()) {
    throw SetupError(dir_.string(), "checkpoint has no tensor named '" + std::string(name) + "'");
  }
  return *files_[it->second];
}

bool SafetensorsCheckpoint::has(std::string_view name) const {
  return file_index_.find(name) != file_index_.end();
}

TensorView SafetensorsCheckpoint::tensor(std::string_view name) const { return file_of(name).tensor(name); }

const SafetensorsEntry& SafetensorsCheckpoint::entry(std::string_view name) const {
  return file_of(name).entry(name);
}

std::vector<std::string> SafetensorsCheckpoint::names() const {
  std::vector<std::string> result;
  result.reserve(file_index_.size());
  for (const auto& item : file_index_) result.push_back(item.first);
  return result;
}

}  // namespace pagedserve
