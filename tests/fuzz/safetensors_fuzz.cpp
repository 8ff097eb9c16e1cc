// Fuzzes safetensors loading (model/safetensors.h) with any file bytes: the bytes are written to a
// model directory as model.safetensors (byte 0 even) or as model.safetensors.index.json next to
// one valid shard (byte 0 odd), and opened as the server opens a checkpoint. Loading must end in
// a checkpoint or a SetupError; every tensor it then hands out lies inside the file and reads
// without a fault.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "model/safetensors.h"
#include "tests/fuzz/fuzz_check.h"

using namespace pagedserve;
namespace fs = std::filesystem;

namespace {

// One directory per process (libFuzzer's -jobs run several), removed at exit.
struct ScratchDir {
  fs::path path;
  ScratchDir() {
    std::string pattern = (fs::temp_directory_path() / "pagedserve-safetensors-fuzz-XXXXXX").string();
    FUZZ_CHECK(::mkdtemp(pattern.data()) != nullptr);
    path = pattern;
  }
  ~ScratchDir() {
    std::error_code ignored;
    fs::remove_all(path, ignored);
  }
};

void write_file(const fs::path& path, const std::uint8_t* data, std::size_t size) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), std::streamsize(size));
  FUZZ_CHECK(out.good());
}

// A valid shard the fuzzed index may point at: tensor "w", F32 [2, 2], and an empty "e".
std::string valid_shard() {
  std::string header = R"({"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},)"
                       R"("e":{"dtype":"BF16","shape":[0],"data_offsets":[16,16]}})";
  while ((8 + header.size()) % 8 != 0) header += ' ';
  std::string file(8, '\0');
  for (int i = 0; i < 8; ++i) file[i] = char((header.size() >> (8 * i)) & 0xff);
  return file + header + std::string(16, '\x01');
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static ScratchDir dir;
  if (size == 0) return 0;
  for (const auto& entry : fs::directory_iterator(dir.path)) fs::remove(entry.path());
  const bool sharded = data[0] & 1;
  if (sharded) {
    write_file(dir.path / "model.safetensors.index.json", data + 1, size - 1);
    const std::string shard = valid_shard();
    write_file(dir.path / "model-00001-of-00001.safetensors", reinterpret_cast<const std::uint8_t*>(shard.data()),
               shard.size());
  } else {
    write_file(dir.path / "model.safetensors", data + 1, size - 1);
  }
  try {
    SafetensorsCheckpoint checkpoint(dir.path);
    for (const std::string& name : checkpoint.names()) {
      const SafetensorsEntry& entry = checkpoint.entry(name);
      FUZZ_CHECK(entry.begin <= entry.end);
      if (!entry.supported) continue;
      TensorView view = checkpoint.tensor(name);
      // Touch every byte: a view past the mapping faults here.
      const auto* bytes = static_cast<const volatile std::uint8_t*>(view.data());
      std::uint8_t sum = 0;
      for (std::size_t i = 0; i < entry.end - entry.begin; ++i) sum += bytes[i];
      (void)sum;
    }
  } catch (const SetupError&) {
  }
  return 0;
}
