#include "server/api_key.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <string>

namespace pagedserve {
namespace {

TEST(ApiKey, NoKeyConfiguredLetsEverythingIn) {
  EXPECT_TRUE(authorization_matches("", ""));
  EXPECT_TRUE(authorization_matches("Bearer anything", ""));
}

TEST(ApiKey, OnlyTheExactBearerHeaderMatches) {
  EXPECT_TRUE(authorization_matches("Bearer sekret", "sekret"));
  EXPECT_FALSE(authorization_matches("", "sekret"));
  EXPECT_FALSE(authorization_matches("Bearer ", "sekret"));
  EXPECT_FALSE(authorization_matches("Bearer sekre", "sekret"));    // a prefix of the key
  EXPECT_FALSE(authorization_matches("Bearer sekrets", "sekret"));  // the key and more
  EXPECT_FALSE(authorization_matches("Bearer sekreT", "sekret"));   // last byte wrong
  EXPECT_FALSE(authorization_matches("Bearer Sekret", "sekret"));   // first byte wrong
  EXPECT_FALSE(authorization_matches("Basic sekret", "sekret"));
  EXPECT_FALSE(authorization_matches("sekret", "sekret"));
  EXPECT_FALSE(authorization_matches("Bearer  sekret", "sekret"));
  EXPECT_FALSE(authorization_matches(std::string_view("Bearer sekret\0", 14), "sekret"));
  EXPECT_FALSE(authorization_matches("Bearer sekret", std::string_view("sekret\0", 7)));
}

// Seconds for 20 checks of `header` (a round short enough to run between two preemptions of a
// busy machine's scheduler).
double time_of(const std::string& header, const std::string& key) {
  auto start = std::chrono::steady_clock::now();
  int matches = 0;
  for (int i = 0; i < 20; ++i) matches += authorization_matches(header, key) ? 1 : 0;
  std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(matches, 0);
  return took.count();
}

// last byte wrong / first byte wrong (or its inverse): the fastest of 500 interleaved rounds of
// each is what the code costs; the rest is the machine's noise.
double timing_ratio(const std::string& key) {
  std::string first_wrong = "Bearer " + key;
  first_wrong[7] = 'x';
  std::string last_wrong = "Bearer " + key;
  last_wrong.back() = 'x';
  double early = 1e9;
  double late = 1e9;
  for (int round = 0; round < 500; ++round) {
    early = std::min(early, time_of(first_wrong, key));
    late = std::min(late, time_of(last_wrong, key));
  }
  return std::max(early, late) / std::min(early, late);
}

// The regression test for the timing leak: the check was `authorization == "Bearer " + key`, and
// == stops at the first wrong byte, so a guess with more right leading bytes took longer. With a
// 4 KiB key the last-byte-wrong guess took 1.19-1.23x the first-byte-wrong one there (most of
// both being the string the old check built); the constant-time check 1.00x. A busy machine can
// spoil one measurement, so the best of three counts.
TEST(ApiKey, TimeDoesNotDependOnHowMuchOfTheGuessIsRight) {
  const std::string key(4096, 'k');
  double best = 1e9;
  for (int attempt = 0; attempt < 3 && best >= 1.1; ++attempt) best = std::min(best, timing_ratio(key));
  EXPECT_LT(best, 1.1);
}

}  // namespace
}  // namespace pagedserve
