#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/half.h"
#include "model/model_config.h"
#include "model/safetensors.h"
#include "tests/unit/model/expect_setup_error.h"
#include "tests/unit/model/temp_dir.h"

namespace pagedserve {
namespace {

using testing::expect_setup_error;

namespace fs = std::filesystem;

std::uint64_t fresh_seed() {
  const std::uint64_t seed = std::random_device{}();
  std::cout << "seed " << seed << "\n";
  return seed;
}

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_bytes(const fs::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc)
      .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A file made of a raw header string (space-padded so the data starts 8-byte aligned) and
// `data_bytes` zero bytes.
std::string raw_file(std::string header, std::size_t data_bytes) {
  header.append((8 - header.size() % 8) % 8, ' ');
  std::string bytes(8, '\0');
  std::uint64_t length = header.size();
  for (int i = 0; i < 8; ++i)
    bytes[static_cast<std::size_t>(i)] = static_cast<char>((length >> (8 * i)) & 0xff);
  return bytes + header + std::string(data_bytes, '\0');
}

// Owns the storage of a few random tensors of mixed dtypes.
struct RandomTensors {
  std::vector<std::vector<std::byte>> storage;
  std::vector<NamedTensor> tensors;

  void add(const std::string& name, DType dtype, std::initializer_list<std::int64_t> shape,
           std::mt19937_64& rng) {
    TensorView probe(nullptr, dtype, shape);
    storage.emplace_back(probe.nbytes());
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::byte* data = storage.back().data();
    for (std::int64_t i = 0; i < probe.numel(); ++i) {
      const float value = normal(rng);
      if (dtype == DType::f32) {
        std::memcpy(data + i * 4, &value, 4);
      } else if (dtype == DType::bf16) {
        const bf16 converted = to_bf16(value);
        std::memcpy(data + i * 2, &converted, 2);
      } else {
        const f16 converted = to_f16(value);
        std::memcpy(data + i * 2, &converted, 2);
      }
    }
    tensors.push_back({name, TensorView(data, dtype, shape)});
  }
};

RandomTensors sample_tensors(std::mt19937_64& rng) {
  RandomTensors result;
  result.add("model.embed_tokens.weight", DType::bf16, {37, 16}, rng);
  result.add("model.norm.weight", DType::f32, {16}, rng);
  result.add("odd.f16", DType::f16, {3, 5, 7}, rng);
  result.add("scalar", DType::f32, {}, rng);
  result.add("empty", DType::bf16, {0, 4}, rng);
  result.add("lm_head.weight", DType::bf16, {37, 16}, rng);
  return result;
}

void expect_same(const TensorView& read, const TensorView& written) {
  ASSERT_EQ(read.dtype(), written.dtype());
  ASSERT_EQ(read.rank(), written.rank());
  for (int d = 0; d < read.rank(); ++d) EXPECT_EQ(read.size(d), written.size(d));
  ASSERT_EQ(read.nbytes(), written.nbytes());
  if (read.nbytes() > 0) {
    EXPECT_EQ(std::memcmp(read.data(), written.data(), read.nbytes()), 0);
  }
}

TEST(Safetensors, RoundTripThroughWriter) {
  std::mt19937_64 rng(fresh_seed());
  const RandomTensors written = sample_tensors(rng);
  testing::TempDir dir;
  write_safetensors(dir / "model.safetensors", written.tensors, {{"note", "test"}});

  const SafetensorsFile file(dir / "model.safetensors");
  EXPECT_EQ(file.names().size(), written.tensors.size());
  EXPECT_EQ(file.metadata().at("format"), "pt");
  EXPECT_EQ(file.metadata().at("note"), "test");
  for (const NamedTensor& tensor : written.tensors) {
    SCOPED_TRACE(tensor.name);
    ASSERT_TRUE(file.has(tensor.name));
    expect_same(file.tensor(tensor.name), tensor.view);
  }
  EXPECT_FALSE(file.has("missing"));
  expect_setup_error([&] { file.tensor("missing"); }, {"model.safetensors", "missing"});

  // Data begins 8-byte aligned, and writing again gives the same bytes.
  const std::string bytes = read_bytes(dir / "model.safetensors");
  std::uint64_t header_size = 0;
  for (int i = 7; i >= 0; --i)
    header_size = (header_size << 8) | static_cast<unsigned char>(bytes[static_cast<std::size_t>(i)]);
  EXPECT_EQ((8 + header_size) % 8, 0u);
  write_safetensors(dir / "again.safetensors", written.tensors, {{"note", "test"}});
  EXPECT_EQ(read_bytes(dir / "again.safetensors"), bytes);
  EXPECT_FALSE(fs::exists(dir / "model.safetensors.tmp"));
}

TEST(Safetensors, CheckpointOfOneFileOrADirectory) {
  std::mt19937_64 rng(fresh_seed());
  const RandomTensors written = sample_tensors(rng);
  testing::TempDir dir;
  write_safetensors(dir / "model.safetensors", written.tensors);
  const SafetensorsCheckpoint checkpoint(dir.path());
  EXPECT_EQ(checkpoint.num_files(), 1u);
  EXPECT_EQ(checkpoint.names().size(), written.tensors.size());
  expect_same(checkpoint.tensor("odd.f16"), written.tensors[2].view);
  expect_setup_error([&] { checkpoint.tensor("model.layers.0.mlp.up_proj.weight"); },
                     {"model.layers.0.mlp.up_proj.weight"});
  EXPECT_EQ(SafetensorsCheckpoint(dir / "model.safetensors").names().size(), written.tensors.size());
}

TEST(Safetensors, ShardedCheckpointWithIndex) {
  std::mt19937_64 rng(fresh_seed());
  const RandomTensors written = sample_tensors(rng);
  testing::TempDir dir;
  const std::vector<NamedTensor> first(written.tensors.begin(), written.tensors.begin() + 3);
  const std::vector<NamedTensor> second(written.tensors.begin() + 3, written.tensors.end());
  write_safetensors(dir / "model-00001-of-00002.safetensors", first);
  write_safetensors(dir / "model-00002-of-00002.safetensors", second);
  nlohmann::json index;
  index["metadata"] = {{"total_size", 0}};
  for (const auto& t : first) index["weight_map"][t.name] = "model-00001-of-00002.safetensors";
  for (const auto& t : second) index["weight_map"][t.name] = "model-00002-of-00002.safetensors";
  std::ofstream(dir / "model.safetensors.index.json") << index.dump(2);

  const SafetensorsCheckpoint checkpoint(dir.path());
  EXPECT_EQ(checkpoint.num_files(), 2u);
  ASSERT_EQ(checkpoint.names().size(), written.tensors.size());
  for (const NamedTensor& tensor : written.tensors) {
    SCOPED_TRACE(tensor.name);
    expect_same(checkpoint.tensor(tensor.name), tensor.view);
  }

  // A tensor mapped to the wrong shard, a missing shard, a shard name that leaves the directory.
  nlohmann::json wrong = index;
  wrong["weight_map"]["scalar"] = "model-00001-of-00002.safetensors";
  std::ofstream(dir / "model.safetensors.index.json", std::ios::trunc) << wrong.dump();
  expect_setup_error([&] { SafetensorsCheckpoint{dir.path()}; }, {"index.json", "scalar"});
  wrong = index;
  wrong["weight_map"]["scalar"] = "model-00003-of-00002.safetensors";
  std::ofstream(dir / "model.safetensors.index.json", std::ios::trunc) << wrong.dump();
  expect_setup_error([&] { SafetensorsCheckpoint{dir.path()}; },
                     {"model-00003-of-00002.safetensors", "not found"});
  // A shard name the OS refuses (longer than NAME_MAX): a missing shard, not a filesystem_error
  // (tests/fuzz/safetensors_fuzz found it).
  wrong["weight_map"]["scalar"] = std::string(300, 'z') + ".safetensors";
  std::ofstream(dir / "model.safetensors.index.json", std::ios::trunc) << wrong.dump();
  expect_setup_error([&] { SafetensorsCheckpoint{dir.path()}; }, {"zzzz", "not found"});
  wrong["weight_map"]["scalar"] = "../model.safetensors";
  std::ofstream(dir / "model.safetensors.index.json", std::ios::trunc) << wrong.dump();
  expect_setup_error([&] { SafetensorsCheckpoint{dir.path()}; }, {"scalar"});
  std::ofstream(dir / "model.safetensors.index.json", std::ios::trunc) << "{\"weight_map\": ";
  expect_setup_error([&] { SafetensorsCheckpoint{dir.path()}; }, {"index.json"});
}

TEST(Safetensors, DirectoryWithoutIndexRejectsDuplicatesAndEmptiness) {
  std::mt19937_64 rng(fresh_seed());
  const RandomTensors written = sample_tensors(rng);
  testing::TempDir dir;
  expect_setup_error([&] { SafetensorsCheckpoint{dir.path()}; }, {"no model.safetensors.index.json"});
  expect_setup_error([&] { SafetensorsCheckpoint{dir / "absent"}; }, {"absent"});
  write_safetensors(dir / "a.safetensors", written.tensors);
  write_safetensors(dir / "b.safetensors", {written.tensors[1]});
  expect_setup_error([&] { SafetensorsCheckpoint{dir.path()}; }, {"model.norm.weight", "another file"});
}

TEST(Safetensors, UnsupportedDtypeIsNamedOnAccess) {
  testing::TempDir dir;
  write_bytes(dir / "x.safetensors", raw_file(R"({"ids":{"dtype":"I64","shape":[2],"data_offsets":[0,16]},)"
                                              R"("w":{"dtype":"F32","shape":[2],"data_offsets":[16,24]}})",
                                              24));
  const SafetensorsFile file(dir / "x.safetensors");
  EXPECT_EQ(file.entry("ids").dtype_name, "I64");
  EXPECT_FALSE(file.entry("ids").supported);
  expect_setup_error([&] { file.tensor("ids"); }, {"'ids'", "I64"});
  EXPECT_EQ(file.tensor("w").numel(), 2);
}

TEST(Safetensors, CorruptHeadersAreSetupErrors) {
  testing::TempDir dir;
  const fs::path path = dir / "bad.safetensors";
  struct Case {
    std::string bytes;
    std::string needle;
  };
  const std::string ok_entry = R"("w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]})";
  const std::vector<Case> cases = {
      {"", "too short"},
      {std::string("\x05\0\0\0", 4), "too short"},
      {raw_file("{}", 0).substr(0, 8), "exceeds the file"},
      {std::string(8, '\xff') + "{}", "implausible header length"},
      {raw_file("{\"w\": ", 16), "not valid JSON"},
      {raw_file("[1,2]", 0), "not a JSON object"},
      {raw_file(R"({"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}})", 8),
       "beyond the data section"},
      {raw_file(R"({"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,12]}})", 16), "needs 16"},
      {raw_file(R"({"w":{"dtype":"F32","shape":[2,-2],"data_offsets":[0,16]}})", 16), "negative"},
      {raw_file(R"({"w":{"dtype":"F32","shape":[2,2],"data_offsets":[16,0]}})", 16), "begin > end"},
      {raw_file(R"({"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0]}})", 16), "data_offsets"},
      {raw_file(R"({"w":{"dtype":"Q4","shape":[2,2],"data_offsets":[0,16]}})", 16), "unknown dtype 'Q4'"},
      {raw_file(R"({"w":{"dtype":"F32","shape":"2x2","data_offsets":[0,16]}})", 16), "shape"},
      {raw_file(R"({"w":{"shape":[2,2],"data_offsets":[0,16]}})", 16), "dtype"},
      {raw_file(R"({"w":[1]})", 16), "not an object"},
      {raw_file(R"({"":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 4), "empty name"},
      {raw_file(R"({"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,16]}})", 16),
       "overflows"},
      {raw_file(R"({"w":{"dtype":"F32","shape":[1,1,1,1,1,1,1],"data_offsets":[0,4]}})", 4), "rank"},
      {raw_file(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[2,6]}})", 8), "aligned"},
      {raw_file("{" + ok_entry + R"(,"v":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})", 16),
       "overlap"},
      {raw_file(R"({"__metadata__":[1]})", 0), "__metadata__"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.needle);
    write_bytes(path, c.bytes);
    expect_setup_error([&] { SafetensorsFile{path}; }, {path.string(), c.needle});
  }
  expect_setup_error([&] { SafetensorsFile{dir / "nope.safetensors"}; }, {"nope.safetensors", "cannot open"});
  expect_setup_error([&] { SafetensorsFile{dir.path()}; }, {"not a regular file"});
}

TEST(Safetensors, EveryTruncationIsASetupError) {
  std::mt19937_64 rng(fresh_seed());
  const RandomTensors written = sample_tensors(rng);
  testing::TempDir dir;
  write_safetensors(dir / "full.safetensors", written.tensors);
  const std::string bytes = read_bytes(dir / "full.safetensors");
  const fs::path cut = dir / "cut.safetensors";
  std::uniform_int_distribution<std::size_t> length(0, bytes.size() - 1);
  for (int trial = 0; trial < 150; ++trial) {
    // Half the cuts inside the header, where parsing is the fragile part.
    const std::size_t keep = trial % 2 == 0 ? length(rng) : length(rng) % 400;
    write_bytes(cut, bytes.substr(0, keep));
    EXPECT_THROW(SafetensorsFile{cut}, SetupError) << "kept " << keep << " of " << bytes.size() << " bytes";
  }
}

// Random byte flips in the length and the header: either a clean SetupError or a file whose every
// view lies inside the mapping (ASan checks the reads).
TEST(Safetensors, HeaderByteFlipsNeverCrash) {
  std::mt19937_64 rng(fresh_seed());
  const RandomTensors written = sample_tensors(rng);
  testing::TempDir dir;
  write_safetensors(dir / "full.safetensors", written.tensors);
  const std::string bytes = read_bytes(dir / "full.safetensors");
  std::uint64_t header_size = 0;
  for (int i = 7; i >= 0; --i)
    header_size = (header_size << 8) | static_cast<unsigned char>(bytes[static_cast<std::size_t>(i)]);
  const fs::path flipped = dir / "flipped.safetensors";
  std::uniform_int_distribution<std::size_t> position(0, 8 + header_size - 1);
  std::uniform_int_distribution<int> byte_value(0, 255);
  int rejected = 0;
  for (int trial = 0; trial < 300; ++trial) {
    std::string corrupt = bytes;
    const int flips = 1 + trial % 3;
    for (int f = 0; f < flips; ++f) corrupt[position(rng)] = static_cast<char>(byte_value(rng));
    write_bytes(flipped, corrupt);
    try {
      const SafetensorsFile file(flipped);
      for (const std::string& name : file.names()) {
        if (!file.entry(name).supported) continue;
        const TensorView view = file.tensor(name);
        const auto* data = static_cast<const unsigned char*>(view.data());
        unsigned sum = 0;
        for (std::size_t i = 0; i < view.nbytes(); ++i) sum += data[i];
        EXPECT_GE(sum, 0u);
      }
    } catch (const SetupError&) {
      ++rejected;
    }
  }
  EXPECT_GT(rejected, 0);
}

TEST(Safetensors, WriterRejectsBadInput) {
  testing::TempDir dir;
  float value = 1.0f;
  const TensorView scalar(&value, DType::f32, {});
  expect_setup_error(
      [&] {
        write_safetensors(dir / "a.safetensors", {{"x", scalar}, {"x", scalar}});
      },
      {"duplicate"});
  expect_setup_error([&] { write_safetensors(dir / "a.safetensors", {{"", scalar}}); }, {"invalid name"});
  expect_setup_error(
      [&] {
        write_safetensors(dir / "missing-dir" / "a.safetensors", {{"x", scalar}});
      },
      {"cannot create"});
}

// The tiny models that tools/fetch-zz-tiny-models.sh writes (scripts/prepare-test-data runs it
// before the tests): complete, and shaped as their config says.
TEST(Safetensors, TinyModelDirectoriesAreComplete) {
  const fs::path models = fs::path(PAGEDSERVE_SOURCE_DIR) / "models";
  if (!fs::exists(models / "tiny-qwen3" / "model.safetensors")) {
    GTEST_SKIP() << "models/tiny-qwen3 not generated (run scripts/prepare-test-data)";
  }
  for (const auto& [name, vocab] : {std::pair{"tiny-qwen3", 151669}, std::pair{"tiny-llama", 128256}}) {
    SCOPED_TRACE(name);
    const fs::path dir = models / name;
    for (const char* file :
         {"config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json"}) {
      EXPECT_TRUE(fs::is_regular_file(dir / file)) << file;
    }
    const ModelConfig config = load_model_config(dir);
    EXPECT_EQ(config.vocab_size, vocab);
    EXPECT_TRUE(config.tie_word_embeddings);
    EXPECT_FALSE(config.eos_token_ids.empty());
    const SafetensorsCheckpoint checkpoint(dir);
    const auto expect_shape = [&](const std::string& tensor, std::vector<std::int64_t> shape) {
      SCOPED_TRACE(tensor);
      ASSERT_TRUE(checkpoint.has(tensor));
      const TensorView view = checkpoint.tensor(tensor);
      EXPECT_EQ(view.dtype(), DType::bf16);
      ASSERT_EQ(view.rank(), static_cast<int>(shape.size()));
      for (int d = 0; d < view.rank(); ++d) EXPECT_EQ(view.size(d), shape[static_cast<std::size_t>(d)]);
    };
    const std::int64_t hidden = config.hidden_size;
    expect_shape("model.embed_tokens.weight", {config.vocab_size, hidden});
    expect_shape("model.norm.weight", {hidden});
    std::size_t expected_count = 2;
    for (int l = 0; l < config.num_hidden_layers; ++l) {
      const std::string prefix = "model.layers." + std::to_string(l) + ".";
      expect_shape(prefix + "input_layernorm.weight", {hidden});
      expect_shape(prefix + "post_attention_layernorm.weight", {hidden});
      expect_shape(prefix + "self_attn.q_proj.weight", {config.q_size(), hidden});
      expect_shape(prefix + "self_attn.k_proj.weight", {config.kv_size(), hidden});
      expect_shape(prefix + "self_attn.v_proj.weight", {config.kv_size(), hidden});
      expect_shape(prefix + "self_attn.o_proj.weight", {hidden, config.q_size()});
      expect_shape(prefix + "mlp.gate_proj.weight", {config.intermediate_size, hidden});
      expect_shape(prefix + "mlp.up_proj.weight", {config.intermediate_size, hidden});
      expect_shape(prefix + "mlp.down_proj.weight", {hidden, config.intermediate_size});
      expected_count += 9;
      if (config.has_qk_norm) {
        expect_shape(prefix + "self_attn.q_norm.weight", {config.head_dim});
        expect_shape(prefix + "self_attn.k_norm.weight", {config.head_dim});
        expected_count += 2;
      }
    }
    EXPECT_FALSE(checkpoint.has("lm_head.weight"));
    EXPECT_EQ(checkpoint.names().size(), expected_count);
  }
}

}  // namespace
}  // namespace pagedserve
