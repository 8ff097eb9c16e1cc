# Shared target settings: warnings, sanitizers, include root.

set(PAGEDSERVE_ROOT ${CMAKE_CURRENT_SOURCE_DIR})

# Applies the project's warning and sanitizer flags to one target.
function(pagedserve_target_options target)
  target_compile_options(${target} PRIVATE
    $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra>
    $<$<AND:$<COMPILE_LANGUAGE:CXX>,$<BOOL:${PAGEDSERVE_WERROR}>>:-Werror>)
  if(PAGEDSERVE_SANITIZE)
    target_compile_options(${target} PRIVATE
      $<$<COMPILE_LANGUAGE:CXX>:-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined>)
    target_link_options(${target} PRIVATE -fsanitize=address,undefined)
  endif()
  # Fuzzing: coverage instrumentation for libFuzzer on every project target, with ASan + UBSan;
  # only the fuzz executables link libFuzzer's main (tests/fuzz/CMakeLists.txt).
  if(PAGEDSERVE_FUZZ)
    target_compile_options(${target} PRIVATE
      $<$<COMPILE_LANGUAGE:CXX>:-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined>)
    target_link_options(${target} PRIVATE -fsanitize=address,undefined)
  endif()
  # ThreadSanitizer (tests/tsan): every project target, so races inside the libraries are seen.
  if(PAGEDSERVE_TSAN)
    target_compile_options(${target} PRIVATE
      $<$<COMPILE_LANGUAGE:CXX>:-fsanitize=thread -fno-omit-frame-pointer>)
    target_link_options(${target} PRIVATE -fsanitize=thread)
  endif()
endfunction()

# pagedserve_library(NAME SOURCES a.cpp ... DEPS lib ...): a static library whose headers are
# included by their path from the repository root.
function(pagedserve_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_library(${name} STATIC ${ARG_SOURCES})
  target_include_directories(${name} PUBLIC ${PAGEDSERVE_ROOT})
  target_link_libraries(${name} PUBLIC ${ARG_DEPS})
  pagedserve_target_options(${name})
endfunction()

# pagedserve_test(NAME SOURCES a.cpp ... DEPS lib ... LABELS unit|kernels|integration ...)
# A GoogleTest executable whose tests are registered with CTest one by one.
function(pagedserve_test name)
  cmake_parse_arguments(ARG "" "TIMEOUT" "SOURCES;DEPS;LABELS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_include_directories(${name} PRIVATE ${PAGEDSERVE_ROOT})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gtest_main GTest::gmock)
  pagedserve_target_options(${name})
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 600)
  endif()
  gtest_discover_tests(${name} DISCOVERY_MODE PRE_TEST
    PROPERTIES LABELS "${ARG_LABELS}" TIMEOUT ${ARG_TIMEOUT})
endfunction()
