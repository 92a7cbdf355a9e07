#!/usr/bin/env bash
# The README's two commands share one build folder: scripts/quickstart configures it first on a
# fresh checkout, then scripts/test must find its tests there (once, a cached
# RL_BUILD_TESTS=OFF left it with none) and reuse it as it is. Both configure through
# scripts/configure; this checks, in a fresh folder, that what it leaves registers tests, has
# the `rl` target, and that configuring again changes no cached option (nothing to rebuild).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() { echo "configure_test: $*" >&2; exit 1; }

"$root/scripts/configure" "$dir/build"
tests=$(ctest --test-dir "$dir/build" -N | sed -n 's/^Total Tests: //p')
[[ ${tests:-0} -gt 0 ]] || fail "the quickstart's configuration registers no tests"
targets=$(cmake --build "$dir/build" --target help)  # not piped into grep -q: pipefail
grep -q '^rl: ' <<<"$targets" || fail "no 'rl' target"
grep -v '^#' "$dir/build/CMakeCache.txt" | sort >"$dir/before"
"$root/scripts/configure" "$dir/build"
grep -v '^#' "$dir/build/CMakeCache.txt" | sort >"$dir/after"
diff "$dir/before" "$dir/after" || fail "configuring again changed the cache"
echo "configure_test: $tests tests registered, configuration stable"
