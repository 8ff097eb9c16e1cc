// Expects `body` to throw a SetupError whose message contains every one of `needles`: the check
// that a bad file on disk is reported by name and cause, shared by the loader tests.
#pragma once

#include <gtest/gtest.h>

#include <initializer_list>
#include <string>

#include "core/error.h"

namespace pagedserve::testing {

template <typename Body>
void expect_setup_error(Body body, std::initializer_list<std::string> needles) {
  try {
    body();
    ADD_FAILURE() << "expected a SetupError";
  } catch (const SetupError& error) {
    for (const std::string& needle : needles) {
      EXPECT_NE(std::string(error.what()).find(needle), std::string::npos)
          << "message '" << error.what() << "' lacks '" << needle << "'";
    }
  }
}

}  // namespace pagedserve::testing
