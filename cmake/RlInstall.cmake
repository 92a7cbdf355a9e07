# What `cmake --install` puts under the prefix, and the package a C++ project finds there:
#
#   find_package(rl CONFIG REQUIRED)              # lib/cmake/rl/rlConfig.cmake
#   target_link_libraries(app PRIVATE rl::rewards) # or rl::server; C++20 and include/ come along
#
# or, without CMake, `pkg-config --cflags --libs rl-rewards`. Installed: the public headers of
# common/ and rewards/ (rewards/math's verify.h, rewards/server's headers), the static
# libraries rl::common, rl::math, rl::rewards and rl::server, and the `rl` program. A build
# with LibTorch (RL_WITH_TORCH) adds the LibTorch side, rl::model, rl::rollout and rl::trainer
# with the libraries they stand on (rl::text, rl::data, rl::model_format, rl::model_kernels,
# rl::trainer_config, rl::trainer_logs), and the headers of rl/, rollout/ and trainer/.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

# The libraries name the source root as their include directory, which only exists in a build
# tree; an installed copy finds the same "rewards/reward.h" paths under include/. C++20 is a
# usage requirement because the public headers use std::span and designated initialisers.
function(rl_export_library target export_name)
  get_target_property(dirs ${target} INTERFACE_INCLUDE_DIRECTORIES)
  list(TRANSFORM dirs REPLACE "^(${RL_SOURCE_ROOT})$" "$<BUILD_INTERFACE:\\1>")
  list(APPEND dirs "$<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>")
  set_target_properties(${target} PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${dirs}"
                                             EXPORT_NAME ${export_name})
  target_compile_features(${target} PUBLIC cxx_std_20)
  install(TARGETS ${target} EXPORT rlTargets
          ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
          INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
endfunction()

rl_export_library(rl_common common)
rl_export_library(rl_math math)
rl_export_library(rl_rewards rewards)
set(RL_PACKAGE_HAS_SERVER OFF)
if(TARGET rl_server)
  rl_export_library(rl_server server)
  set(RL_PACKAGE_HAS_SERVER ON)
endif()
# The LibTorch side only as a whole: rl_trainer links every other library of it (and rl_server),
# and a static library's exported link interface names its dependencies, so exporting part of
# it would leave rlTargets.cmake pointing at targets it does not define.
set(RL_PACKAGE_HAS_TORCH OFF)
if(TARGET rl_trainer)
  foreach(name text model_format model_kernels model data rollout trainer_config trainer_logs trainer)
    rl_export_library(rl_${name} ${name})
  endforeach()
  set(RL_PACKAGE_HAS_TORCH ON)
endif()
set(RL_PACKAGE_HAS_SLEEF OFF)  # rl::model_kernels links it on x86-64
if(RL_PACKAGE_HAS_TORCH AND TARGET PkgConfig::SLEEF)
  set(RL_PACKAGE_HAS_SLEEF ON)
endif()
if(TARGET rl)
  install(TARGETS rl RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()

# Public headers only: rewards/rule.h and rewards/math's parser internals stay private.
install(DIRECTORY ${RL_SOURCE_ROOT}/common/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/common
        FILES_MATCHING PATTERN "*.h")
install(FILES ${RL_SOURCE_ROOT}/rewards/reward.h ${RL_SOURCE_ROOT}/rewards/any_gold.h
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/rewards)
install(FILES ${RL_SOURCE_ROOT}/rewards/math/verify.h
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/rewards/math)
if(RL_PACKAGE_HAS_SERVER)
  install(DIRECTORY ${RL_SOURCE_ROOT}/rewards/server/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/rewards/server
          FILES_MATCHING PATTERN "*.h")
endif()
if(RL_PACKAGE_HAS_TORCH)
  foreach(dir rl rollout trainer)
    install(DIRECTORY ${RL_SOURCE_ROOT}/${dir}/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/${dir}
            FILES_MATCHING PATTERN "*.h")
  endforeach()
endif()

install(EXPORT rlTargets NAMESPACE rl:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/rl)
configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/rlConfig.cmake.in
                              ${CMAKE_CURRENT_BINARY_DIR}/rlConfig.cmake
                              INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/rl)
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/rlConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/rlConfig.cmake ${CMAKE_CURRENT_BINARY_DIR}/rlConfigVersion.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/rl)

# pkg-config: static libraries list every library they need, in link order. The file finds
# the prefix from its own place (${pcfiledir}), so an installed tree can move.
string(REGEX REPLACE "[^/]+" ".." RL_PC_TO_PREFIX "${CMAKE_INSTALL_LIBDIR}/pkgconfig")
configure_file(${CMAKE_CURRENT_LIST_DIR}/rl-rewards.pc.in
               ${CMAKE_CURRENT_BINARY_DIR}/rl-rewards.pc @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/rl-rewards.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
