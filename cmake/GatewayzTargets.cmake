# Project-wide compile settings applied to our own targets only (never to
# third-party headers), following Envoy's warning set.
set(GATEWAYZ_WARNINGS
  -Wall -Wextra -Wpedantic -Wnon-virtual-dtor -Woverloaded-virtual
  -Wold-style-cast -Wvla)
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  # GCC's spelling; clang (the fuzz build) does not know it and, with
  # -Werror, fails on the unknown option.
  list(APPEND GATEWAYZ_WARNINGS -Wshadow=local)
  # GCC 12 reports Asio's coroutine-frame allocator (operator new/delete on
  # awaitable_frame) as mismatched: a known false positive (GCC PR 109224).
  list(APPEND GATEWAYZ_WARNINGS -Wno-mismatched-new-delete)
endif()
if(GATEWAYZ_WERROR)
  list(APPEND GATEWAYZ_WARNINGS -Werror)
endif()

set(GATEWAYZ_SANITIZER_FLAGS "")
if(GATEWAYZ_SANITIZE)
  set(GATEWAYZ_SANITIZER_FLAGS -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_compile_options(${GATEWAYZ_SANITIZER_FLAGS})
  add_link_options(${GATEWAYZ_SANITIZER_FLAGS})
endif()

# ThreadSanitizer cannot be combined with ASan (or libFuzzer's ASan build):
# the runtimes claim the same shadow memory.
option(GATEWAYZ_TSAN "Build with ThreadSanitizer (excludes GATEWAYZ_SANITIZE and GATEWAYZ_FUZZ)" OFF)
if(GATEWAYZ_TSAN)
  if(GATEWAYZ_SANITIZE OR GATEWAYZ_FUZZ)
    message(FATAL_ERROR "GATEWAYZ_TSAN excludes GATEWAYZ_SANITIZE and GATEWAYZ_FUZZ; turn those OFF")
  endif()
  set(GATEWAYZ_SANITIZER_FLAGS -fsanitize=thread -fno-omit-frame-pointer)
  add_compile_options(${GATEWAYZ_SANITIZER_FLAGS})
  add_link_options(${GATEWAYZ_SANITIZER_FLAGS})
  # TSan does not model standalone fences, and GCC warns (-Wtsan) at each
  # one. Asio's "fenced blocks" around handler calls are such fences, next
  # to the mutexes of its scheduler that TSan does see: Asio offers to leave
  # them out. Ours order relaxed atomics in seqlocks (metric exemplars),
  # which TSan never reports as races; the warning is kept, not an error.
  add_compile_definitions(BOOST_ASIO_DISABLE_FENCED_BLOCK)
  add_compile_options(-Wno-error=tsan)
endif()

# Boost.Asio: one io_context per thread, no deprecated interfaces.
# The recycling cache keeps freed coroutine frames and operation states per
# thread for reuse; a request awaits about six nested coroutines, more than the
# default cache of 2 holds, so the rest went to malloc on every request.
add_compile_definitions(
  BOOST_ASIO_NO_DEPRECATED
  BOOST_ASIO_DISABLE_BOOST_COROUTINE
  BOOST_ASIO_RECYCLING_ALLOCATOR_CACHE_SIZE=16)

# gw_add_library(NAME SOURCES ... DEPS ...): a static library for one concern.
function(gw_add_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_library(${name} STATIC ${ARG_SOURCES})
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR}/src)
  target_compile_options(${name} PRIVATE ${GATEWAYZ_WARNINGS})
  target_link_libraries(${name} PUBLIC ${ARG_DEPS})
endfunction()

# gw_add_test(NAME SOURCES ... DEPS ...): a GoogleTest binary registered with CTest.
function(gw_add_test name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;LABELS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_compile_options(${name} PRIVATE ${GATEWAYZ_WARNINGS})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gtest_main)
  include(GoogleTest)
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 60 PROPERTIES LABELS "${ARG_LABELS}")
endfunction()
