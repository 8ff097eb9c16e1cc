// A fresh temporary directory per test object, named after the running test, removed with it.
// Shared by the model tests that write checkpoints, configs and tokenizer files to disk.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <system_error>

#include <unistd.h>

namespace pagedserve::testing {

// A fresh directory under the system temp dir, removed with the object.
class TempDir {
 public:
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = "pagedserve-test-" + std::string(info->test_suite_name()) + "-" + info->name() + "-" +
                       std::to_string(::getpid()) + "-" + std::to_string(counter_++);
    // Parameterised tests are named "Prefix/Suite" and "Test/3": one directory, not a nest whose
    // parents would outlive the test.
    std::replace(name.begin(), name.end(), '/', '_');
    path_ = std::filesystem::temp_directory_path() / name;
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
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }
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
