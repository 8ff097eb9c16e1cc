// Stop strings over streamed text. Text arrives in pieces (one detokenized token at a time); a stop
// string may straddle pieces. StopStringChecker emits only text that can no longer become part of
// a stop string, holding back the longest tail that is a prefix of one, and on a match truncates
// right before the earliest occurrence (the stop string itself is never emitted).
//
// One per request, on the engine thread. Pieces must be whole UTF-8 characters (as
// IncrementalDecoder gives them); the emitted text then never splits a character.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace pagedserve {

class StopStringChecker {
 public:
  // Empty strings are ignored.
  explicit StopStringChecker(std::vector<std::string> stop_strings);

  struct Update {
    std::string text;      // safe to emit now
    bool stopped = false;  // a stop string matched: `text` ends right before it; finish the request
  };

  // Adds the next piece of generated text. After a stop, further pieces are ignored.
  Update push(std::string_view piece);

  // The held-back text, for when the request ends without a stop string (length, EOS).
  std::string flush();

  bool stopped() const noexcept { return stopped_; }
  bool has_stop_strings() const noexcept { return !stop_strings_.empty(); }

 private:
  std::vector<std::string> stop_strings_;
  std::string pending_;  // held back: a prefix of some stop string, or empty
  bool stopped_ = false;
};

}  // namespace pagedserve
