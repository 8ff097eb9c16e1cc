#include "scheduler/stop_checker.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace pagedserve {
namespace {

// Feeds pieces and returns everything emitted (including the final flush if not stopped).
std::string stream(StopStringChecker& checker, const std::vector<std::string>& pieces) {
  std::string out;
  for (const std::string& piece : pieces) out += checker.push(piece).text;
  out += checker.flush();
  return out;
}

TEST(StopStringChecker, MatchAcrossPiecesTruncatesBeforeTheStopString) {
  StopStringChecker checker({"###"});
  EXPECT_EQ(checker.push("Hello #").text, "Hello ");  // "#" might start the stop string
  EXPECT_EQ(checker.push("#").text, "");
  const StopStringChecker::Update last = checker.push("# tail");
  EXPECT_TRUE(last.stopped);
  EXPECT_EQ(last.text, "");
  EXPECT_TRUE(checker.stopped());
  EXPECT_EQ(checker.push("more").text, "");
  EXPECT_EQ(checker.flush(), "");
}

TEST(StopStringChecker, FalseStartIsReleased) {
  StopStringChecker checker({"###"});
  EXPECT_EQ(checker.push("a#").text, "a");
  EXPECT_EQ(checker.push("#b").text, "##b");
  EXPECT_FALSE(checker.stopped());
  EXPECT_EQ(checker.push("c").text, "c");
}

TEST(StopStringChecker, EarliestOfSeveralStopStringsWins) {
  StopStringChecker checker({"world", "lo w"});
  const StopStringChecker::Update update = checker.push("hello world");
  EXPECT_TRUE(update.stopped);
  EXPECT_EQ(update.text, "hel");
}

TEST(StopStringChecker, HoldsTheLongestPossibleStart) {
  StopStringChecker checker({"abcab"});
  EXPECT_EQ(checker.push("xabca").text, "x");  // "abca" could still become "abcab"
  const StopStringChecker::Update update = checker.push("b!");
  EXPECT_TRUE(update.stopped);
  EXPECT_EQ(update.text, "");
}

TEST(StopStringChecker, OverlappingStartFoundAfterAFailedLongerOne) {
  StopStringChecker checker({"aab"});
  EXPECT_EQ(checker.push("aa").text, "");
  EXPECT_EQ(checker.push("a").text, "a");  // "aaa": only the last "aa" can still start "aab"
  const StopStringChecker::Update update = checker.push("b");
  EXPECT_TRUE(update.stopped);
  EXPECT_EQ(update.text, "");
}

TEST(StopStringChecker, FlushReleasesHeldTextWhenTheRequestEndsOtherwise) {
  StopStringChecker checker({"</s>"});
  EXPECT_EQ(stream(checker, {"done <", "/"}), "done </");
}

TEST(StopStringChecker, NoStopStringsPassesEverythingThrough) {
  StopStringChecker checker({"", ""});
  EXPECT_FALSE(checker.has_stop_strings());
  EXPECT_EQ(checker.push("anything").text, "anything");
}

TEST(StopStringChecker, MultiByteCharactersAreNeverSplit) {
  StopStringChecker checker({"\xC3\xA9t\xC3\xA9"});    // "été"
  EXPECT_EQ(checker.push("caf\xC3\xA9").text, "caf");  // the é might start "été"
  EXPECT_EQ(checker.push("!").text, "\xC3\xA9!");
  const StopStringChecker::Update update = checker.push("l'\xC3\xA9t\xC3\xA9 fin");
  EXPECT_TRUE(update.stopped);
  EXPECT_EQ(update.text, "l'");
}

}  // namespace
}  // namespace pagedserve
