# rl_add_test(NAME SOURCES a.cpp b.cpp LIBS lib1 lib2 [LABELS l] [TIMEOUT s])
# One Catch2 (v2) executable per test file group, registered as one CTest test that runs
# from the source tree so tests can read their data files relative to tests/.
find_package(Catch2 2 REQUIRED)

if(NOT TARGET rl_catch_main)
  # Catch2's main is compiled once and shared: it is the slowest header to compile.
  add_library(rl_catch_main OBJECT ${CMAKE_CURRENT_LIST_DIR}/catch_main.cpp)
  target_link_libraries(rl_catch_main PUBLIC Catch2::Catch2 rl_common)
endif()

function(rl_add_test name)
  cmake_parse_arguments(T "" "TIMEOUT" "SOURCES;LIBS;LABELS" ${ARGN})
  add_executable(${name} ${T_SOURCES} $<TARGET_OBJECTS:rl_catch_main>)
  target_link_libraries(${name} PRIVATE Catch2::Catch2 rl_common ${T_LIBS})
  target_include_directories(${name} PRIVATE ${RL_SOURCE_ROOT})
  add_test(NAME ${name} COMMAND ${name} WORKING_DIRECTORY ${RL_SOURCE_ROOT}/tests)
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  set_tests_properties(${name} PROPERTIES TIMEOUT ${T_TIMEOUT})
  if(T_LABELS)
    set_tests_properties(${name} PROPERTIES LABELS "${T_LABELS}")
  endif()
endfunction()
