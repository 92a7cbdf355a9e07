#!/usr/bin/env bash
# What a user of the installed package does: `cmake --install` the build into an empty prefix,
# then, from there only, (1) build tests/install/consumer with find_package(rl CONFIG) and run
# it (with WITH_TORCH on, its LibTorch program too), (2) compile a program with `pkg-config --cflags --libs rl-rewards` and run it, (3) import
# the installed Python package (when the build has it) and score.
#   usage: run_install_test.sh BUILD_DIR SOURCE_DIR PYTHON WITH_TORCH(ON|OFF)
set -euo pipefail
build=$1 source=$2 python=$3 with_torch=$4
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix

cmake --install "$build" --prefix "$prefix" >/dev/null

generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
cmake -S "$source/tests/install/consumer" -B "$tmp/consumer" "${generator[@]}" \
  -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" -DRL_CONSUMER_TORCH="$with_torch" >/dev/null
cmake --build "$tmp/consumer" >/dev/null
"$tmp/consumer/score_with_rl"
"$tmp/consumer/serve_with_rl"
if [[ $with_torch == ON ]]; then
  "$tmp/consumer/model_with_rl"
fi

export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
# shellcheck disable=SC2046  # pkg-config's output is meant to be split into flags
c++ -o "$tmp/score_pkg_config" "$source/tests/install/consumer/score_with_rl.cpp" \
  $(pkg-config --cflags --libs rl-rewards)
"$tmp/score_pkg_config"

package=$(find "$prefix/lib" -maxdepth 3 -type d -name rl_rewards -path '*-packages/*' | head -n 1)
if [[ -n $package ]]; then
  PYTHONPATH=$(dirname "$package") "$python" -c '
import rl_rewards
r = rl_rewards.load("r1").score(["<think>t</think><answer>4</answer>"], answers=["4"])[0]
assert r.reward == 2.0, r
assert rl_rewards.__file__.startswith("'"$prefix"'"), rl_rewards.__file__
print("installed python package: ok")'
fi
