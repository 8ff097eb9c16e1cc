#include "model/safetensors_writer.h"

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "core/dtype.h"
#include "core/error.h"

namespace pagedserve {
namespace {

const char* safetensors_dtype(DType dtype) {
  switch (dtype) {
    case DType::f32:
      return "F32";
    case DType::bf16:
      return "BF16";
    case DType::f16:
      return "F16";
    case DType::i32:
      return "I32";
  }
  return "?";
}

}  // namespace

void write_safetensors(const std::filesystem::path& path, const std::vector<NamedTensor>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  const std::string file = path.string();
  nlohmann::json header = nlohmann::json::object();
  nlohmann::json meta = nlohmann::json::object();
  meta["format"] = "pt";
  for (const auto& [key, value] : metadata) meta[key] = value;
  header["__metadata__"] = meta;

  // Widest elements first (stable otherwise), so with the data section 8-byte aligned every tensor
  // is aligned to its element size without gaps (readers such as the reference one reject gaps).
  std::vector<const NamedTensor*> layout;
  for (const NamedTensor& tensor : tensors) layout.push_back(&tensor);
  std::stable_sort(layout.begin(), layout.end(), [](const NamedTensor* a, const NamedTensor* b) {
    return dtype_size(a->view.dtype()) > dtype_size(b->view.dtype());
  });

  std::set<std::string> seen;
  std::size_t offset = 0;
  for (const NamedTensor* tensor_pointer : layout) {
    const NamedTensor& tensor = *tensor_pointer;
    const std::string subject = file + ": tensor '" + tensor.name + "'";
    if (tensor.name.empty() || tensor.name == "__metadata__") throw SetupError(subject, "invalid name");
    if (!seen.insert(tensor.name).second) throw SetupError(subject, "duplicate name");
    if (tensor.view.device() != Device::cpu) throw SetupError(subject, "not a CPU tensor");
    if (!tensor.view.is_contiguous()) throw SetupError(subject, "not contiguous");
    if (tensor.view.numel() > 0 && tensor.view.data() == nullptr) throw SetupError(subject, "no data");
    nlohmann::json shape = nlohmann::json::array();
    for (int d = 0; d < tensor.view.rank(); ++d) shape.push_back(tensor.view.size(d));
    const std::size_t nbytes = tensor.view.nbytes();
    header[tensor.name] = {{"dtype", safetensors_dtype(tensor.view.dtype())},
                           {"shape", shape},
                           {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
  }

  std::string header_text = header.dump();
  header_text.append((8 - (8 + header_text.size()) % 8) % 8, ' ');
  unsigned char length[8];
  std::uint64_t header_size = header_text.size();
  for (unsigned char& byte : length) {
    byte = static_cast<unsigned char>(header_size & 0xffu);
    header_size >>= 8;
  }

  const std::filesystem::path temporary = std::filesystem::path(file + ".tmp");
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    if (!out) throw SetupError(temporary.string(), "cannot create");
    out.write(reinterpret_cast<const char*>(length), sizeof(length));
    out.write(header_text.data(), static_cast<std::streamsize>(header_text.size()));
    for (const NamedTensor* tensor : layout) {
      out.write(static_cast<const char*>(tensor->view.data()),
                static_cast<std::streamsize>(tensor->view.nbytes()));
    }
    out.flush();
    if (!out) {
      out.close();
      std::filesystem::remove(temporary);
      throw SetupError(temporary.string(), "write failed");
    }
  }
  std::error_code error;
  std::filesystem::rename(temporary, path, error);
  if (error) throw SetupError(file, "cannot rename from " + temporary.string() + ": " + error.message());
}

}  // namespace pagedserve
